/* op_elementwise.c — placeholder, being written. */
#include "ops.h"
