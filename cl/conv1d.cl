/* conv1d.cl — placeholder, being written. */
