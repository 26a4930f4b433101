/* weights.c — placeholder, being written. */
