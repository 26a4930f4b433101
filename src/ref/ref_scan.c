/* ref_scan.c — placeholder, being written. */
