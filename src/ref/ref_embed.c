/* ref_embed.c — placeholder, being written. */
