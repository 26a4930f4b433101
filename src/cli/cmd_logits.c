/* cmd_logits.c — placeholder */
