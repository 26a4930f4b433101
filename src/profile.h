/* profile.h — per-kernel device time (BMOJO_PROFILE=1): every bm_launch records an OpenCL
 * profiling event; bm_profile_collect folds finished events into totals by kernel name. A tool
 * for finding what bounds a forward pass; off by default, when launches carry no event at all. */
#ifndef BM_PROFILE_H
#define BM_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

typedef struct {
    char *name;         /* a copy of the name passed to bm_launch */
    uint64_t count;
    uint64_t total_ns;  /* sum of END - START */
} bm_profile_entry;

typedef struct bm_profile {
    int enabled;
    const char *phase;         /* NULL, or a static label ("forward", "backward") recorded as
                                  "<phase>:<kernel>" so a training pass splits by phase */
    cl_event *events;          /* recorded, not yet collected */
    size_t *event_entry;       /* index into entries of each event */
    size_t n_events, cap_events;
    bm_profile_entry *entries; /* totals, in first-seen order */
    size_t n_entries, cap_entries;
} bm_profile;

/* Remembers a launch's event (takes ownership; the name is copied). On allocation failure the
 * event is dropped. */
void bm_profile_record(bm_profile *p, const char *name, cl_event ev);
/* Waits for and folds every recorded event into the totals. */
void bm_profile_collect(bm_profile *p);
/* Clears the totals (recorded events are collected first). */
void bm_profile_reset(bm_profile *p);
void bm_profile_free(bm_profile *p);

#endif
