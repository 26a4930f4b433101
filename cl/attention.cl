/* attention.cl — placeholder, being written. */
