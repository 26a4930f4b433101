/* forward.c — placeholder, being written. */
