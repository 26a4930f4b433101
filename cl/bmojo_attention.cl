/* bmojo_attention.cl — placeholder, being written. */
