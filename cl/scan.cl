/* scan.cl — placeholder, being written. */
