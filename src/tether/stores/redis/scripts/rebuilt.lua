-- Mark Redis as rebuilt from the durable store, if the rebuild that ends here is the latest one
-- started and Redis did not restart meanwhile (its `rebuilding` key, set when it began, would be gone).
-- KEYS: rebuilding, rebuilt. ARGV: the rebuild's token. Returns 1 if marked.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
