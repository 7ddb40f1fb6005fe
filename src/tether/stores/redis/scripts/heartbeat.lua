-- Apply a batch of heartbeats atomically, with the Redis server's clock. Mirrors
-- tether.lifecycle.heartbeat_accepted and tether.lifecycle.deadlines.
-- ARGV[1] = key prefix; ARGV[2] = JSON array of beats [session_id, epoch|null, phase|null, silence|null]
-- (silence: seconds of announced quiet; null = the session's soft deadline); ARGV[3] = the time in
-- microseconds from an injected test clock, or '' for the Redis server's clock (always, in production).
-- Returns a JSON array with, per beat, code or [code, current epoch, current state]:
--   0 applied   1 unknown session   2 wrong epoch   3 lease already expired   4 not live
-- Keys are built here from the prefix, not declared in KEYS: one Redis server allows it, and it makes
-- a whole batch one round trip. (On Redis Cluster, give the prefix a hash tag such as `{tether}`.)
-- Times are integer microseconds; string.format keeps all their digits (tostring keeps 14).
local call, fmt, floor, tonumber, null = redis.call, string.format, math.floor, tonumber, cjson.null
local prefix = ARGV[1] .. ':s:'
local beats = cjson.decode(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local clock = call('TIME')
  now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
end
local now_text = fmt('%.0f', now)
local leases, suspects, out, n = {}, {}, {}, 0
for i, beat in ipairs(beats) do
  local sid, epoch, phase, silence = beat[1], beat[2], beat[3], beat[4]
  local key = prefix .. sid
  local h = call('HMGET', key, 'epoch', 'state', 'lease', 'timeout', 'suspect_after')
  local state, code = h[2], 0
  if not h[1] then
    code = 1
  elseif epoch ~= null and tonumber(h[1]) ~= epoch then
    code = 2
  elseif state ~= 'active' and state ~= 'paused' then
    code = 4
  elseif state == 'active' and now >= tonumber(h[3]) then  -- tether.lifecycle.lease_expired
    code = 3
  else
    -- tether.lifecycle.deadlines: microseconds as floor(x * 1e6 + 0.5), soft + (timeout - after)
    -- in that order, so the same doubles give the same microsecond as every other store.
    local after = tonumber(h[5])
    local soft = after
    if silence ~= null then soft = silence end
    local suspect_at = fmt('%.0f', now + floor(soft * 1000000 + 0.5))
    local lease = fmt('%.0f', now + floor((soft + (tonumber(h[4]) - after)) * 1000000 + 0.5))
    if phase == null then phase = '' end
    call('HSET', key, 'last_heartbeat', now_text, 'phase', phase, 'suspect_at', suspect_at, 'lease', lease)
    if state == 'active' then
      n = n + 2
      leases[n - 1], leases[n] = lease, sid
      suspects[n - 1], suspects[n] = suspect_at, sid
    end
  end
  if code == 0 then
    out[i] = 0
  else
    out[i] = {code, tonumber(h[1] or '0'), state or ''}
  end
end
if n > 0 then
  call('ZADD', ARGV[1] .. ':expiry', unpack(leases))
  call('ZADD', ARGV[1] .. ':suspect', unpack(suspects))
end
return cjson.encode(out)
