/* devices.c — placeholder, being written. */
