-- Apply a batch of heartbeats atomically, with the Redis server's clock.
-- ARGV[1] = key prefix; ARGV[2] = JSON array of beats [session_id, epoch|null, phase|null, silence|null]
-- (silence: seconds of announced quiet; null = the session's soft deadline); ARGV[3] = the time in
-- microseconds from an injected test clock, or '' for the Redis server's clock (always, in production).
-- Returns a JSON array with, per beat, code or [code, current epoch, current state]:
--   0 applied   1 unknown session   2 wrong epoch   3 lease already expired   4 not live
-- Keys are built here from the prefix, not declared in KEYS: one Redis server allows it, and it makes
-- a whole batch one round trip. (On Redis Cluster, give the prefix a hash tag such as `{tether}`.)
-- Times are integer microseconds; string.format keeps all their digits (tostring keeps 14).
local prefix = ARGV[1]
local beats = cjson.decode(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
end
local now_text = string.format('%.0f', now)
local leases, suspects, out = {}, {}, {}
for i, beat in ipairs(beats) do
  local sid, epoch, phase, silence = beat[1], beat[2], beat[3], beat[4]
  local key = prefix .. ':s:' .. sid
  local h = redis.call('HMGET', key, 'epoch', 'state', 'lease', 'timeout', 'suspect_after')
  local code = 0
  if not h[1] then
    code = 1
  elseif epoch ~= cjson.null and tonumber(h[1]) ~= epoch then
    code = 2
  elseif h[2] ~= 'active' and h[2] ~= 'paused' then
    code = 4
  elseif h[2] == 'active' and now >= tonumber(h[3]) then
    code = 3
  else
    local soft = tonumber(h[5])
    if silence ~= cjson.null then soft = silence end
    local suspect_at = string.format('%.0f', now + math.floor(soft * 1000000))
    local lease = string.format('%.0f', now + math.floor((soft + tonumber(h[4]) - tonumber(h[5])) * 1000000))
    if phase == cjson.null then phase = '' end
    redis.call('HSET', key, 'last_heartbeat', now_text, 'phase', phase, 'suspect_at', suspect_at, 'lease', lease)
    if h[2] == 'active' then
      leases[#leases + 1] = lease
      leases[#leases + 1] = sid
      suspects[#suspects + 1] = suspect_at
      suspects[#suspects + 1] = sid
    end
  end
  if code == 0 then
    out[i] = 0
  else
    out[i] = {code, tonumber(h[1] or '0'), h[2] or ''}
  end
end
if #leases > 0 then
  redis.call('ZADD', prefix .. ':expiry', unpack(leases))
  redis.call('ZADD', prefix .. ':suspect', unpack(suspects))
end
return cjson.encode(out)
