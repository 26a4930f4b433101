/* rmsnorm.cl — placeholder, being written. */
