-- Mirror a session's owner-side fields after the durable store applied a transition.
-- ARGV: prefix, session_id, version, epoch, state, agent_type, timeout, suspect_after,
--       renews ('1' = also the liveness fields below), phase, last_heartbeat, suspect_at, lease,
--       seconds an ended session's hash is kept, created_at (microseconds: which incarnation of the id).
-- A mirror older than what Redis holds (version) is ignored, so racing mirrors converge on the newest.
-- A hash left by another session of the same id (a store re-created under the same URL: deterministic
-- ids) has another created_at and is replaced whole.
-- Returns 1 if applied, 0 if Redis already had this version or a newer one.
local prefix, sid, version = ARGV[1], ARGV[2], tonumber(ARGV[3])
local key = prefix .. ':s:' .. sid
local current = redis.call('HMGET', key, 'version', 'created')
local same = current[1] and current[2] == ARGV[15]
if same and tonumber(current[1]) >= version then
  return 0
end
redis.call('HSET', key, 'version', ARGV[3], 'epoch', ARGV[4], 'state', ARGV[5], 'agent_type', ARGV[6],
  'timeout', ARGV[7], 'suspect_after', ARGV[8], 'created', ARGV[15])
if ARGV[9] == '1' or not same then
  redis.call('HSET', key, 'phase', ARGV[10], 'last_heartbeat', ARGV[11], 'suspect_at', ARGV[12],
    'lease', ARGV[13])
end
local expiry, suspects = prefix .. ':expiry', prefix .. ':suspect'
if ARGV[5] == 'active' then
  local h = redis.call('HMGET', key, 'lease', 'suspect_at')
  redis.call('ZADD', expiry, h[1], sid)
  redis.call('ZADD', suspects, h[2], sid)
  redis.call('PERSIST', key)
else
  redis.call('ZREM', expiry, sid)
  redis.call('ZREM', suspects, sid)
  if ARGV[5] == 'paused' then
    redis.call('PERSIST', key)
  else
    redis.call('EXPIRE', key, ARGV[14])
  end
end
return 1
