/* bmojo_eidetic.cl — placeholder, being written. */
