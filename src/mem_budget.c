/* mem_budget.c — checks a planned allocation against the device's global memory and the host's
 * free memory (MemAvailable, RLIMIT_AS); see mem_budget.h. Linux /proc is read when present;
 * elsewhere only the device limit is checked. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "error.h"
#include "mem_budget.h"

static double gib(uint64_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

static uint64_t meminfo_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return UINT64_MAX;
    char line[256];
    uint64_t kib = 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = sscanf(line, "MemAvailable: %" SCNu64 " kB", &kib) == 1;
    fclose(f);
    return found ? kib * 1024 : UINT64_MAX;
}

/* Bytes of address space this process has mapped (the first field of /proc/self/statm, in
 * pages). */
static uint64_t address_space_used(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long pages = 0;
    if (fscanf(f, "%llu", &pages) != 1) pages = 0;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return (uint64_t)pages * (uint64_t)(page > 0 ? page : 4096);
}

uint64_t bm_host_memory_available(const char **which)
{
    uint64_t avail = meminfo_available();
    *which = "MemAvailable";
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        uint64_t used = address_space_used(), lim = (uint64_t)rl.rlim_cur;
        uint64_t left = lim > used ? lim - used : 0;
        if (left < avail) {
            avail = left;
            *which = "RLIMIT_AS (ulimit -v)";
        }
    }
    return avail;
}

int bm_mem_check(const bm_rt *rt, const char *what, uint64_t total, uint64_t more, uint64_t host_more)
{
    uint64_t device = rt->lim.global_mem;
    if (device && total > device)
        return bm_fail(BMOJO_ENOMEM, "%s: needs %.1f GiB, the device (%s) has %.1f GiB", what, gib(total),
                       rt->desc.name, gib(device));
    uint64_t host_need = host_more + (rt->lim.host_memory ? more : 0);
    if (host_need == 0) return 0;
    const char *which = NULL;
    uint64_t host = bm_host_memory_available(&which);
    if (host != UINT64_MAX && host_need > host)
        return bm_fail(BMOJO_ENOMEM, "%s: needs %.1f GiB more of host memory, the host can give %.1f GiB (%s)", what,
                       gib(host_need), gib(host), which);
    return 0;
}
