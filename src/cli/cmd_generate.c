/* cmd_generate.c — placeholder */
