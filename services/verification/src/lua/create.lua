-- Creates a challenge. KEYS[1] challenge hash; ARGV: email (empty for a decoy), purpose,
-- code MAC, cooldown ms, TTL ms, the tag of the budget its resends spend.
-- Returns {resend_at_ms, expires_at_ms} in Redis server time.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local resend_at = now + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'email', ARGV[1], 'purpose', ARGV[2], 'code_mac', ARGV[3],
           'attempts', 0, 'resend_at', resend_at, 'budget', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {tostring(resend_at), tostring(now + tonumber(ARGV[5]))}
