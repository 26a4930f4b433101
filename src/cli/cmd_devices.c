/* cmd_devices.c — placeholder */
