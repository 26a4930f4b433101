/* config_yaml.c — placeholder, being written. */
