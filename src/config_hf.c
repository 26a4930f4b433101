/* config_hf.c — placeholder, being written. */
