-- Checks a code against a challenge, atomically.
-- KEYS[1] challenge hash; ARGV[1] MAC of the offered code; ARGV[2] max wrong attempts.
-- Returns {'ok', email, purpose} (the challenge is deleted: a code works once),
-- {'wrong', attempts_left}, {'burnt'} or {'missing'}.
local h = KEYS[1]
if redis.call('EXISTS', h) == 0 then return {'missing'} end
local max = tonumber(ARGV[2])
local attempts = tonumber(redis.call('HGET', h, 'attempts') or '0')
if attempts >= max then return {'burnt'} end
if redis.call('HGET', h, 'code_mac') == ARGV[1] then
  local email = redis.call('HGET', h, 'email')
  local purpose = redis.call('HGET', h, 'purpose')
  redis.call('DEL', h)
  return {'ok', email, purpose}
end
attempts = redis.call('HINCRBY', h, 'attempts', 1)
if attempts >= max then return {'burnt'} end
return {'wrong', tostring(max - attempts)}
