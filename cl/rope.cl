/* rope.cl — placeholder, being written. */
