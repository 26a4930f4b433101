/* embed.cl — placeholder, being written. */
