/* cmd_run.c — placeholder */
