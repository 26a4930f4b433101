/* ref_elementwise.c — placeholder, being written. */
