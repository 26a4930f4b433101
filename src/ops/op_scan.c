/* op_scan.c — placeholder, being written. */
#include "ops.h"
