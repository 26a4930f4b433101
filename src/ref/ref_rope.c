/* ref_rope.c — placeholder, being written. */
