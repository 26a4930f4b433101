/* ref_conv1d.c — placeholder, being written. */
