/* ref_bmojo.c — placeholder, being written. */
