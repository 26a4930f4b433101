/* op_conv1d.c — placeholder, being written. */
#include "ops.h"
