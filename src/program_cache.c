/* program_cache.c — placeholder, being written. */
