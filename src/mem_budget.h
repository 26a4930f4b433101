/* mem_budget.h — the memory budget: before a model, a state or a forward pass's activations are
 * allocated, the runtime adds up what they need and compares it with what the device has and,
 * for devices that allocate from host RAM (CPUs through POCL, integrated GPUs), with what the host
 * can give. A run that cannot fit fails with a message that says how much it needs and how much
 * there is, instead of a driver abort or the kernel's OOM killer. */
#ifndef BM_MEM_BUDGET_H
#define BM_MEM_BUDGET_H

#include <stdint.h>

#include "runtime.h"

/* What the host can still give this process: the smaller of MemAvailable (/proc/meminfo) and
 * RLIMIT_AS less the address space already mapped (/proc/self/statm). *which names the limit that
 * binds ("MemAvailable" or "RLIMIT_AS (ulimit -v)"). UINT64_MAX when neither can be read. */
uint64_t bm_host_memory_available(const char **which);

/* `what` (e.g. "the weights") brings the device's total use to `total` bytes, of which `more`
 * are new device buffers and `host_more` new host buffers. Fails (BMOJO_ENOMEM) when total is
 * above the device's global memory, or when the new host bytes (plus `more` on host-memory
 * devices) are above what the host can give. */
int bm_mem_check(const bm_rt *rt, const char *what, uint64_t total, uint64_t more, uint64_t host_more);

#endif
