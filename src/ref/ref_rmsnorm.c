/* ref_rmsnorm.c — placeholder, being written. */
