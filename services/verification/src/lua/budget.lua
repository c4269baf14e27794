-- Spends one unit of a fixed-window budget, atomically.
-- KEYS[1] counter; ARGV[1] limit; ARGV[2] window ms.
-- Returns {1, used} when within the budget, {0, ms_until_the_window_resets} when over it.
local used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if used > tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]); ttl = tonumber(ARGV[2]) end
  return {0, ttl}
end
return {1, used}
