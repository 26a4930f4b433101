/* op_bmojo.c — placeholder, being written. */
#include "ops.h"
