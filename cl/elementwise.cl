/* elementwise.cl — placeholder, being written. */
