/* kv_cache.cl — placeholder, being written. */
