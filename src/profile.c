/* profile.c — per-kernel device time from OpenCL profiling events (see profile.h). */
#include "profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The index of name's entry, created on first sight; (size_t)-1 when out of memory. */
static size_t entry_index(bm_profile *p, const char *name)
{
    for (size_t i = 0; i < p->n_entries; i++)
        if (!strcmp(p->entries[i].name, name)) return i;
    if (p->n_entries == p->cap_entries) {
        size_t cap = p->cap_entries ? 2 * p->cap_entries : 64;
        bm_profile_entry *e = realloc(p->entries, cap * sizeof *e);
        if (!e) return (size_t)-1;
        p->entries = e;
        p->cap_entries = cap;
    }
    char *copy = strdup(name ? name : "?");
    if (!copy) return (size_t)-1;
    p->entries[p->n_entries] = (bm_profile_entry){copy, 0, 0};
    return p->n_entries++;
}

void bm_profile_record(bm_profile *p, const char *name, cl_event ev)
{
    char key[160];
    if (p->phase) {
        snprintf(key, sizeof key, "%s:%s", p->phase, name ? name : "?");
        name = key;
    }
    size_t idx = entry_index(p, name ? name : "?");
    if (idx != (size_t)-1 && p->n_events == p->cap_events) {
        size_t cap = p->cap_events ? 2 * p->cap_events : 1024;
        cl_event *e = realloc(p->events, cap * sizeof *e);
        if (e) p->events = e;
        size_t *n = realloc(p->event_entry, cap * sizeof *n);
        if (n) p->event_entry = n;
        if (e && n) p->cap_events = cap;
        else idx = (size_t)-1;
    }
    if (idx == (size_t)-1) {
        clReleaseEvent(ev);
        return;
    }
    p->events[p->n_events] = ev;
    p->event_entry[p->n_events++] = idx;
}

void bm_profile_collect(bm_profile *p)
{
    if (p->n_events) clWaitForEvents((cl_uint)p->n_events, p->events);
    for (size_t i = 0; i < p->n_events; i++) {
        cl_ulong t0 = 0, t1 = 0;
        if (clGetEventProfilingInfo(p->events[i], CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) == CL_SUCCESS &&
            clGetEventProfilingInfo(p->events[i], CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS) {
            bm_profile_entry *e = &p->entries[p->event_entry[i]];
            e->count++;
            e->total_ns += t1 > t0 ? t1 - t0 : 0;
        }
        clReleaseEvent(p->events[i]);
    }
    p->n_events = 0;
}

void bm_profile_reset(bm_profile *p)
{
    bm_profile_collect(p);
    for (size_t i = 0; i < p->n_entries; i++) p->entries[i].count = p->entries[i].total_ns = 0;
}

void bm_profile_free(bm_profile *p)
{
    bm_profile_collect(p);
    for (size_t i = 0; i < p->n_entries; i++) free(p->entries[i].name);
    free(p->events);
    free(p->event_entry);
    free(p->entries);
    memset(p, 0, sizeof *p);
}
