/* main.c — placeholder */
