-- Replaces the code of a challenge once its cooldown has passed, atomically.
-- KEYS[1] challenge hash; ARGV[1] MAC of the new code; ARGV[2] cooldown ms; ARGV[3] TTL ms.
-- Returns {'ok', email, purpose, resend_at_ms, expires_at_ms}, {'early', wait_ms} or {'missing'}.
-- Time comes from the Redis server so every replica of the service agrees on it.
local h = KEYS[1]
if redis.call('EXISTS', h) == 0 then return {'missing'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local resend_at = tonumber(redis.call('HGET', h, 'resend_at') or '0')
if now < resend_at then return {'early', tostring(resend_at - now)} end
local next_at = now + tonumber(ARGV[2])
local expires_at = now + tonumber(ARGV[3])
redis.call('HSET', h, 'code_mac', ARGV[1], 'attempts', 0, 'resend_at', next_at)
redis.call('PEXPIRE', h, ARGV[3])
return {'ok', redis.call('HGET', h, 'email'), redis.call('HGET', h, 'purpose'),
        tostring(next_at), tostring(expires_at)}
