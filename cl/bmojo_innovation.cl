/* bmojo_innovation.cl — placeholder, being written. */
