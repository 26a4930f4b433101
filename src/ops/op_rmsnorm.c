/* op_rmsnorm.c — placeholder, being written. */
#include "ops.h"
