/* op_embed.c — placeholder, being written. */
#include "ops.h"
