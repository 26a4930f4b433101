/* op_attention.c — placeholder, being written. */
#include "ops.h"
