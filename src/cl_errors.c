/* cl_errors.c — placeholder, being written. */
