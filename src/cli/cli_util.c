/* cli_util.c — placeholder */
