/* devices.c — OpenCL device enumeration (bmojo_devices_list), device selection by spec
 * ("P:D", a part of the name, $BMOJO_DEVICE, or the first GPU), the device limits kernels are
 * sized by, and the one place the kernel build options are derived from those limits. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "runtime.h"

typedef struct {
    cl_platform_id platform;
    cl_device_id device;
    int pi, di;
} dev_ref;

/* Every (platform, device) pair in the order OpenCL lists them; *out is malloc'ed (NULL when
 * there are none). A missing platform is not an error here: callers decide what "none" means. */
static int enumerate(dev_ref **out, int *count)
{
    *out = NULL;
    *count = 0;
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    /* The ICD loader answers CL_PLATFORM_NOT_FOUND_KHR (-1001) when no driver is installed. */
    if (err == -1001 || (err == CL_SUCCESS && np == 0)) return 0;
    if (err != CL_SUCCESS) return bm_cl_check(err, "clGetPlatformIDs");
    cl_platform_id *plats = calloc(np, sizeof *plats);
    if (!plats) return bm_fail(BMOJO_ENOMEM, "listing OpenCL platforms: out of host memory");
    err = clGetPlatformIDs(np, plats, NULL);
    if (err != CL_SUCCESS) {
        free(plats);
        return bm_cl_check(err, "clGetPlatformIDs");
    }
    dev_ref *refs = NULL;
    int n = 0;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        if (err == CL_DEVICE_NOT_FOUND || nd == 0) continue; /* an empty platform is no error */
        if (err != CL_SUCCESS) continue;                      /* nor is a broken one: skip it */
        cl_device_id *devs = calloc(nd, sizeof *devs);
        dev_ref *grown = realloc(refs, (size_t)(n + (int)nd) * sizeof *refs);
        if (!devs || !grown) {
            free(devs);
            free(grown ? grown : refs);
            free(plats);
            return bm_fail(BMOJO_ENOMEM, "listing OpenCL devices: out of host memory");
        }
        refs = grown;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) == CL_SUCCESS) {
            for (cl_uint d = 0; d < nd; d++)
                refs[n++] = (dev_ref){plats[p], devs[d], (int)p, (int)d};
        }
        free(devs);
    }
    free(plats);
    *out = refs;
    *count = n;
    return 0;
}

/* Copies a string query into a fixed field, truncated, trailing blanks removed (some drivers
 * pad their names). */
static void trim_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
    size_t len = strlen(dst);
    while (len > 0 && isspace((unsigned char)dst[len - 1])) dst[--len] = 0;
}

static int plat_str(cl_platform_id p, cl_platform_info what, char *dst, size_t cap, const char *name)
{
    size_t size = 0;
    cl_int err = clGetPlatformInfo(p, what, 0, NULL, &size);
    if (err != CL_SUCCESS) return bm_cl_check(err, name);
    char *tmp = calloc(1, size + 1);
    if (!tmp) return bm_fail(BMOJO_ENOMEM, "%s: out of host memory", name);
    err = clGetPlatformInfo(p, what, size, tmp, NULL);
    if (err == CL_SUCCESS) trim_copy(dst, cap, tmp);
    free(tmp);
    return bm_cl_check(err, name);
}

static int dev_str(cl_device_id d, cl_device_info what, char *dst, size_t cap, const char *name)
{
    size_t size = 0;
    cl_int err = clGetDeviceInfo(d, what, 0, NULL, &size);
    if (err != CL_SUCCESS) return bm_cl_check(err, name);
    char *tmp = calloc(1, size + 1);
    if (!tmp) return bm_fail(BMOJO_ENOMEM, "%s: out of host memory", name);
    err = clGetDeviceInfo(d, what, size, tmp, NULL);
    if (err == CL_SUCCESS) trim_copy(dst, cap, tmp);
    free(tmp);
    return bm_cl_check(err, name);
}

#define DEV_SCALAR(d, what, var) bm_cl_check(clGetDeviceInfo((d), (what), sizeof(var), &(var), NULL), "clGetDeviceInfo(" #what ")")

static int describe(const dev_ref *r, bmojo_device_desc *o)
{
    memset(o, 0, sizeof *o);
    o->platform_index = r->pi;
    o->device_index = r->di;
    cl_device_type type = 0;
    cl_ulong gmem = 0, amax = 0, lmem = 0;
    size_t wg = 0;
    cl_uint cu = 0, clk = 0;
    int st;
    if ((st = plat_str(r->platform, CL_PLATFORM_NAME, o->platform_name, sizeof o->platform_name,
                       "clGetPlatformInfo(CL_PLATFORM_NAME)")) ||
        (st = plat_str(r->platform, CL_PLATFORM_VERSION, o->platform_version, sizeof o->platform_version,
                       "clGetPlatformInfo(CL_PLATFORM_VERSION)")) ||
        (st = dev_str(r->device, CL_DEVICE_NAME, o->name, sizeof o->name, "clGetDeviceInfo(CL_DEVICE_NAME)")) ||
        (st = dev_str(r->device, CL_DEVICE_VENDOR, o->vendor, sizeof o->vendor, "clGetDeviceInfo(CL_DEVICE_VENDOR)")) ||
        (st = dev_str(r->device, CL_DRIVER_VERSION, o->driver_version, sizeof o->driver_version,
                      "clGetDeviceInfo(CL_DRIVER_VERSION)")) ||
        (st = dev_str(r->device, CL_DEVICE_VERSION, o->device_version, sizeof o->device_version,
                      "clGetDeviceInfo(CL_DEVICE_VERSION)")) ||
        (st = DEV_SCALAR(r->device, CL_DEVICE_TYPE, type)) ||
        (st = DEV_SCALAR(r->device, CL_DEVICE_GLOBAL_MEM_SIZE, gmem)) ||
        (st = DEV_SCALAR(r->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, amax)) ||
        (st = DEV_SCALAR(r->device, CL_DEVICE_LOCAL_MEM_SIZE, lmem)) ||
        (st = DEV_SCALAR(r->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, wg)) ||
        (st = DEV_SCALAR(r->device, CL_DEVICE_MAX_COMPUTE_UNITS, cu)) ||
        (st = DEV_SCALAR(r->device, CL_DEVICE_MAX_CLOCK_FREQUENCY, clk)))
        return bm_fail_context(st, "describing OpenCL device %d:%d", r->pi, r->di);
    o->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
    o->global_mem_bytes = gmem;
    o->max_alloc_bytes = amax;
    o->local_mem_bytes = lmem;
    o->max_work_group_size = wg;
    o->compute_units = cu;
    o->max_clock_mhz = clk;
    return 0;
}

int bmojo_devices_list(bmojo_device_desc *out, int cap, int *count)
{
    if (!count || cap < 0 || (cap > 0 && !out))
        return bm_fail(BMOJO_EINVAL, "bmojo_devices_list: count is NULL, or out is NULL with cap %d", cap);
    *count = 0;
    dev_ref *refs = NULL;
    int n = 0;
    int st = enumerate(&refs, &n);
    if (st) return st;
    for (int i = 0; i < n && i < cap; i++) {
        if ((st = describe(&refs[i], &out[i]))) {
            free(refs);
            return st;
        }
    }
    free(refs);
    *count = n;
    if (n == 0) bm_fail(BMOJO_OK, "no OpenCL device found (is an OpenCL driver / ICD installed? see `clinfo -l`)");
    return 0;
}

/* Appends "  P:D  name (platform)" lines for the ENODEV message, so the user sees what exists. */
static void list_into(const dev_ref *refs, int n, char *buf, size_t cap)
{
    size_t used = strlen(buf);
    for (int i = 0; i < n && used + 1 < cap; i++) {
        bmojo_device_desc d;
        if (describe(&refs[i], &d)) {
            memset(&d, 0, sizeof d);
            d.platform_index = refs[i].pi;
            d.device_index = refs[i].di;
            snprintf(d.name, sizeof d.name, "(unreadable)");
        }
        int w = snprintf(buf + used, cap - used, "\n  %d:%d  %s (%s)%s", d.platform_index, d.device_index, d.name,
                         d.platform_name, d.is_gpu ? " GPU" : "");
        if (w < 0) break;
        used += (size_t)w;
        if (used >= cap) break;
    }
}

static int ci_contains(const char *hay, const char *needle)
{
    size_t hn = strlen(hay), nn = strlen(needle);
    if (nn == 0) return 1;
    for (size_t i = 0; i + nn <= hn; i++) {
        size_t j = 0;
        while (j < nn && tolower((unsigned char)hay[i + j]) == tolower((unsigned char)needle[j])) j++;
        if (j == nn) return 1;
    }
    return 0;
}

/* "P:D" with both parts plain decimal numbers. */
static int parse_pd(const char *s, int *p, int *d)
{
    char *end;
    if (!isdigit((unsigned char)s[0])) return 0;
    long a = strtol(s, &end, 10);
    if (*end != ':' || !isdigit((unsigned char)end[1])) return 0;
    long b = strtol(end + 1, &end, 10);
    if (*end != 0 || a > 1000000 || b > 1000000) return 0;
    *p = (int)a;
    *d = (int)b;
    return 1;
}

int bm_device_select(const char *spec, cl_platform_id *platform, cl_device_id *device, bmojo_device_desc *desc)
{
    const char *from = "argument";
    if (!spec || !spec[0]) {
        const char *env = getenv("BMOJO_DEVICE");
        spec = env && env[0] ? env : NULL;
        from = "BMOJO_DEVICE";
    }
    dev_ref *refs = NULL;
    int n = 0;
    int st = enumerate(&refs, &n);
    if (st) return bm_fail_context(BMOJO_ENODEV, "listing OpenCL devices");
    if (n == 0) {
        free(refs);
        return bm_fail(BMOJO_ENODEV, "no OpenCL device found (no platform or no device; is an OpenCL driver / ICD "
                                     "installed? see `clinfo -l`)");
    }
    int pick = -1;
    if (!spec) {
        /* Default: the first GPU, else the first device of any kind (CPU, accelerator). */
        for (int i = 0; i < n && pick < 0; i++) {
            cl_device_type type = 0;
            if (clGetDeviceInfo(refs[i].device, CL_DEVICE_TYPE, sizeof type, &type, NULL) == CL_SUCCESS &&
                (type & CL_DEVICE_TYPE_GPU))
                pick = i;
        }
        if (pick < 0) pick = 0;
    } else {
        int p, d;
        if (parse_pd(spec, &p, &d)) {
            for (int i = 0; i < n; i++)
                if (refs[i].pi == p && refs[i].di == d) pick = i;
        } else {
            for (int i = 0; i < n && pick < 0; i++) {
                char name[256] = "";
                clGetDeviceInfo(refs[i].device, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
                if (ci_contains(name, spec)) pick = i;
            }
        }
        if (pick < 0) {
            char msg[4096];
            snprintf(msg, sizeof msg, "no OpenCL device matches \"%s\" (from %s; use \"P:D\" or part of a name); "
                     "available devices:", spec, from);
            list_into(refs, n, msg, sizeof msg);
            free(refs);
            return bm_fail(BMOJO_ENODEV, "%s", msg);
        }
    }
    st = describe(&refs[pick], desc);
    if (st == 0) {
        *platform = refs[pick].platform;
        *device = refs[pick].device;
    }
    free(refs);
    return st;
}

int bm_device_limits_query(cl_device_id device, bm_device_limits *lim)
{
    memset(lim, 0, sizeof *lim);
    cl_device_type type = 0;
    cl_ulong lmem = 0, gmem = 0, amax = 0;
    cl_uint cu = 0, dims = 0;
    cl_bool unified = CL_FALSE;
    cl_device_local_mem_type ltype = CL_LOCAL;
    int st;
    if ((st = DEV_SCALAR(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, lim->max_wg)) ||
        (st = DEV_SCALAR(device, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, dims)) ||
        (st = DEV_SCALAR(device, CL_DEVICE_TYPE, type)) || (st = DEV_SCALAR(device, CL_DEVICE_LOCAL_MEM_SIZE, lmem)) ||
        (st = DEV_SCALAR(device, CL_DEVICE_LOCAL_MEM_TYPE, ltype)) ||
        (st = DEV_SCALAR(device, CL_DEVICE_GLOBAL_MEM_SIZE, gmem)) ||
        (st = DEV_SCALAR(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, amax)) ||
        (st = DEV_SCALAR(device, CL_DEVICE_MAX_COMPUTE_UNITS, cu)))
        return bm_fail_context(st, "querying device limits");
    /* deprecated since OpenCL 2.0: a driver that no longer answers means "not unified" */
    if (clGetDeviceInfo(device, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL) != CL_SUCCESS)
        unified = CL_FALSE;
    /* CL_DEVICE_MAX_WORK_ITEM_SIZES has one entry per dimension (at least 3 in OpenCL 1.2). */
    size_t wi[16] = {0};
    if (dims < 3 || dims > 16) dims = dims < 3 ? 3 : 16;
    st = bm_cl_check(clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_ITEM_SIZES, dims * sizeof(size_t), wi, NULL),
                     "clGetDeviceInfo(CL_DEVICE_MAX_WORK_ITEM_SIZES)");
    if (st) return bm_fail_context(st, "querying device limits");
    for (int i = 0; i < 3; i++) lim->max_wi[i] = wi[i] ? wi[i] : 1;
    if (lim->max_wg == 0) lim->max_wg = 1;
    lim->local_mem = lmem;
    lim->global_mem = gmem;
    lim->max_alloc = amax;
    lim->compute_units = cu;
    lim->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
    /* CPU devices (POCL) and integrated GPUs allocate from host RAM: the memory budget
     * (mem_budget.c) then also counts against what the host can give */
    lim->host_memory = unified || (type & CL_DEVICE_TYPE_CPU) != 0;
    lim->local_mem_is_global = ltype == CL_GLOBAL;
    cl_uint align_bits = 0;
    if (clGetDeviceInfo(device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL) != CL_SUCCESS)
        align_bits = 0;
    /* at least 256 bytes, so that float4 loads from any sub-buffer stay aligned */
    lim->base_align = align_bits / 8 > 256 ? align_bits / 8 : 256;
    /* 256 is a good work-group size on every GPU family and fits every device that reports at
     * least that much; smaller devices get their largest power of two. */
    size_t cap = 256;
    if (lim->max_wg < cap) cap = lim->max_wg;
    if (lim->max_wi[0] < cap) cap = lim->max_wi[0];
    size_t wg = 1;
    while (wg * 2 <= cap) wg *= 2;
    lim->wg = wg;
    return 0;
}

int bm_build_options_for(const bm_device_limits *lim, char *buf, size_t n)
{
    /* No -cl-fast-relaxed-math / -cl-mad-enable: fp32 results must match the C references. */
    int w = snprintf(buf, n, "-cl-std=CL1.2 -DBM_WG=%zu -DBM_LOCAL_MEM=%llu -DBM_IS_GPU=%d", lim->wg,
                     (unsigned long long)lim->local_mem, lim->is_gpu ? 1 : 0);
    if (w < 0 || (size_t)w >= n) return bm_fail(BMOJO_EINVAL, "build options do not fit in %zu bytes", n);
    return 0;
}
