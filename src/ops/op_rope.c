/* op_rope.c — placeholder, being written. */
#include "ops.h"
