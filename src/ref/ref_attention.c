/* ref_attention.c — placeholder, being written. */
