/* test_safetensors.c — tests of src/safetensors.c: write/read round trips (F32, F16, BF16, I32,
 * 0-d and zero-size tensors, metadata, awkward names), F16/BF16 -> f32 conversion (known values
 * and all 65536 F16 bit patterns), every fixture file under $BMOJO_FIXTURES, a corpus of
 * corrupted files (each must fail with BMOJO_EFORMAT and a message naming the file and the rule),
 * and sharded sets through model.safetensors.index.json.
 * Prints one line per test, then "N passed, N failed"; exits non-zero on any failure. */
#include "bmojo.h"
#include "json.h"
#include "safetensors.h"
#include "safetensors_index.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int n_pass, n_fail;
static char tmpdir[64];

static void report(const char *name, int ok, const char *why)
{
    if (ok)
        n_pass++;
    else
        n_fail++;
    printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name, ok ? "" : ": ", ok ? "" : why);
}

#define CHECK(cond)                                                                                 \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            snprintf(why, sizeof why, "line %d: %s (last error: %s)", __LINE__, #cond,              \
                     bmojo_last_error());                                                           \
            goto out;                                                                               \
        }                                                                                           \
    } while (0)

static const char *tpath(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

/* A raw safetensors file: le64 header length (hlen, or strlen(header) when hlen is ~0), the
 * header text, then data_len bytes of data (a counting pattern). */
static const char *write_raw_n(const char *name, uint64_t hlen, const char *header, size_t hl, size_t data_len)
{
    const char *path = tpath(name);
    if (hlen == ~(uint64_t)0)
        hlen = hl;
    size_t n = 8 + hl + data_len;
    unsigned char *b = malloc(n);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data_len; i++)
        b[8 + hl + i] = (unsigned char)(i * 7 + 1);
    write_bytes(path, b, n);
    free(b);
    return path;
}

static const char *write_raw(const char *name, uint64_t hlen, const char *header, size_t data_len)
{
    return write_raw_n(name, hlen, header, strlen(header), data_len);
}

static int file_size_of(const char *path, long *size)
{
    struct stat st;
    if (stat(path, &st))
        return -1;
    *size = (long)st.st_size;
    return 0;
}

/* ---- round trip ---- */

static void test_round_trip(void)
{
    char why[1024] = "";
    bm_st_file f = {0};
    bm_json *meta = NULL;
    float w[15];
    for (int i = 0; i < 15; i++)
        w[i] = (float)i * 0.37f - 2.0f;
    uint16_t h16[7] = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x7C00, 0x0000, 0x8000};
    uint16_t b16[6] = {0x3F80, 0xC020, 0x4049, 0x0001, 0x7F80, 0xBF80};
    int32_t i32[4] = {1, -1, 2147483647, -2147483647 - 1};
    float scalar = 3.25f;
    uint16_t weird_val = 0x4000;
    const char *weird = "we\"ird\\na\nme\x01 \xC3\xA9";
    bm_st_out outs[] = {
        {"w_f32", BM_DT_F32, 2, {3, 5}, w},
        {"h_f16", BM_DT_F16, 1, {7}, h16},
        {"b_bf16", BM_DT_BF16, 2, {2, 3}, b16},
        {"i_i32", BM_DT_I32, 1, {4}, i32},
        {"scalar", BM_DT_F32, 0, {0}, &scalar},
        {"empty", BM_DT_F32, 2, {0, 3}, NULL},
        {"empty_i32", BM_DT_I32, 1, {0}, NULL},
        {weird, BM_DT_BF16, 3, {1, 1, 1}, &weird_val},
    };
    const int n = (int)(sizeof outs / sizeof outs[0]);
    const char *md[] = {"format", "pt", "note", "quote \" back \\ nl \n end", NULL};
    const char *path = tpath("round.safetensors");
    CHECK(bm_st_write(path, outs, n, md) == 0);
    /* Overwriting an existing file works too (temporary file + rename). */
    CHECK(bm_st_write(path, outs, n, md) == 0);
    CHECK(bm_st_open(path, &f) == 0);
    CHECK(f.n == n);
    CHECK(strcmp(f.path, path) == 0);
    for (int i = 1; i < f.n; i++)
        CHECK(strcmp(f.tensors[i - 1].name, f.tensors[i].name) < 0);
    /* Header padded to a multiple of 8: the data section is 8-aligned in the file. */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = (hl << 8) | f.file[i];
    CHECK(hl % 8 == 0 && f.data == f.file + 8 + hl);
    CHECK(f.file[8 + hl - 1] == '}' || f.file[8 + hl - 1] == ' ');
    /* Data is stored in name order. */
    for (int i = 1; i < f.n; i++)
        CHECK(f.tensors[i].begin == f.tensors[i - 1].end);
    CHECK(f.tensors[0].begin == 0 && f.tensors[f.n - 1].end == f.file_size - 8 - hl);
    for (int i = 0; i < n; i++) {
        const bm_st_tensor *t = bm_st_find(&f, outs[i].name);
        CHECK(t != NULL);
        CHECK(strcmp(t->name, outs[i].name) == 0);
        CHECK(t->dtype == outs[i].dtype && t->ndim == outs[i].ndim);
        uint64_t ne = 1;
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] == outs[i].shape[d]);
            ne *= (uint64_t)outs[i].shape[d];
        }
        CHECK(t->nelem == ne);
        CHECK(t->end - t->begin == ne * bm_dtype_size(t->dtype));
        if (ne)
            CHECK(memcmp(bm_st_data(&f, t), outs[i].data, (size_t)(t->end - t->begin)) == 0);
    }
    CHECK(bm_st_find(&f, "nope") == NULL && bm_st_find(&f, "") == NULL && bm_st_find(&f, "zzzz") == NULL);
    const bm_st_tensor *ts = bm_st_find(&f, "scalar");
    CHECK(ts->ndim == 0 && ts->nelem == 1);
    float got_s = 0;
    CHECK(bm_st_to_f32(&f, ts, &got_s) == 0 && got_s == 3.25f);
    float got_w[15];
    CHECK(bm_st_to_f32(&f, bm_st_find(&f, "w_f32"), got_w) == 0 && memcmp(got_w, w, sizeof w) == 0);
    float dummy = 7.0f;
    CHECK(bm_st_to_f32(&f, bm_st_find(&f, "empty"), &dummy) == 0 && dummy == 7.0f);
    CHECK(bm_st_to_f32(&f, bm_st_find(&f, "i_i32"), got_w) == BMOJO_EFORMAT);
    CHECK(strstr(bmojo_last_error(), "i_i32") && strstr(bmojo_last_error(), "I32"));
    /* Metadata comes back as JSON with the same pairs in the same order. */
    CHECK(f.metadata_json != NULL);
    char err[256];
    CHECK(bm_json_parse(f.metadata_json, strlen(f.metadata_json), &meta, err, sizeof err) == 0);
    CHECK(meta->type == BM_JSON_OBJECT && meta->count == 2);
    CHECK(strcmp(meta->keys[0], "format") == 0 && strcmp(meta->items[0].string, "pt") == 0);
    CHECK(strcmp(meta->keys[1], "note") == 0 && strcmp(meta->items[1].string, md[3]) == 0);
    bm_st_close(&f);
    CHECK(f.tensors == NULL && f.file == NULL && f.n == 0);
    bm_st_close(&f); /* twice is harmless */

    /* No metadata, no tensors: a valid file with an empty header object. */
    path = tpath("empty.safetensors");
    CHECK(bm_st_write(path, NULL, 0, NULL) == 0);
    CHECK(bm_st_open(path, &f) == 0);
    CHECK(f.n == 0 && f.metadata_json == NULL);
    long sz;
    CHECK(file_size_of(path, &sz) == 0 && sz == 16); /* 8 + "{}" padded to 8 */
    bm_st_close(&f);
    /* No temporary file left behind. */
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    int tmp_left = 0;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp."))
            tmp_left = 1;
    closedir(d);
    CHECK(!tmp_left);
    why[0] = 0;
out:
    report("write/read round trip (F32, F16, BF16, I32, 0-d, zero-size, metadata, escaped name)", !why[0], why);
    bm_st_close(&f);
    bm_json_free(meta);
}

static void test_write_errors(void)
{
    char why[1024] = "";
    float x = 1;
    bm_st_out dup[] = {{"a", BM_DT_F32, 0, {0}, &x}, {"a", BM_DT_F32, 0, {0}, &x}};
    CHECK(bm_st_write(tpath("dup.safetensors"), dup, 2, NULL) == BMOJO_EINVAL);
    CHECK(strstr(bmojo_last_error(), "duplicate"));
    bm_st_out neg[] = {{"a", BM_DT_F32, 1, {-1}, &x}};
    CHECK(bm_st_write(tpath("neg.safetensors"), neg, 1, NULL) == BMOJO_EINVAL);
    bm_st_out meta_name[] = {{"__metadata__", BM_DT_F32, 0, {0}, &x}};
    CHECK(bm_st_write(tpath("m.safetensors"), meta_name, 1, NULL) == BMOJO_EINVAL);
    bm_st_out bad_utf8[] = {{"a\xFF", BM_DT_F32, 0, {0}, &x}};
    CHECK(bm_st_write(tpath("u.safetensors"), bad_utf8, 1, NULL) == BMOJO_EINVAL);
    const char *odd_md[] = {"k", NULL};
    bm_st_out ok1[] = {{"a", BM_DT_F32, 0, {0}, &x}};
    CHECK(bm_st_write(tpath("md.safetensors"), ok1, 1, odd_md) == BMOJO_EINVAL);
    /* I/O failure: folder does not exist -> EIO naming the path and the errno text. */
    const char *bad = "/nonexistent-bmojo-dir/x.safetensors";
    CHECK(bm_st_write(bad, ok1, 1, NULL) == BMOJO_EIO);
    CHECK(strstr(bmojo_last_error(), "/nonexistent-bmojo-dir/x.safetensors") &&
          strstr(bmojo_last_error(), strerror(ENOENT)));
    why[0] = 0;
out:
    report("bm_st_write rejects bad input (EINVAL) and reports I/O errors (EIO)", !why[0], why);
}

/* ---- conversion ---- */

static float f16_reference(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0)
        v = ldexp((double)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(1024 + m), e - 25);
    return (float)(s ? -v : v);
}

/* The piecewise writer (bmojo logits streams its output through it): parts in any order land
 * in place, bytes never put read as zeros, a part outside its tensor is refused, and an abort
 * leaves neither the target nor a temporary file. */
static void test_streaming_writer(void)
{
    char why[1024] = "";
    bm_st_file f = {0};
    bm_st_writer w;
    memset(&w, 0, sizeof w);
    w.af.fd = -1;
    float a[10], b[3] = {7, 8, 9};
    for (int i = 0; i < 10; i++)
        a[i] = (float)i + 0.5f;
    bm_st_out outs[] = {{"z", BM_DT_F32, 2, {2, 5}, NULL}, {"b", BM_DT_F32, 1, {3}, NULL}};
    const char *path = tpath("stream.safetensors");
    CHECK(bm_st_writer_open(&w, path, outs, 2, NULL) == 0);
    CHECK(bm_st_writer_put(&w, 0, 5 * 4, a + 5, 5 * 4) == 0); /* row 1 first */
    CHECK(bm_st_writer_put(&w, 0, 0, a, 3 * 4) == 0);         /* row 0 but its last 2 floats */
    CHECK(bm_st_writer_put(&w, 1, 0, b, 3 * 4) == 0);
    CHECK(bm_st_writer_put(&w, 1, 4, b, 3 * 4) == BMOJO_EINVAL);  /* past the tensor's end */
    CHECK(bm_st_writer_put(&w, 2, 0, b, 4) == BMOJO_EINVAL);      /* no tensor 2 */
    CHECK(access(path, F_OK) != 0);                               /* not there before the commit */
    CHECK(bm_st_writer_commit(&w) == 0);
    CHECK(bm_st_open(path, &f) == 0);
    const bm_st_tensor *tz = bm_st_find(&f, "z"), *tb = bm_st_find(&f, "b");
    CHECK(tz && tb && tz->nelem == 10 && tb->nelem == 3);
    const float *z = bm_st_data(&f, tz), *bb = bm_st_data(&f, tb);
    for (int i = 0; i < 10; i++)
        CHECK(z[i] == ((i == 3 || i == 4) ? 0.0f : a[i]));
    CHECK(bb[0] == 7 && bb[1] == 8 && bb[2] == 9);
    bm_st_close(&f);
    /* abort: the committed file stays as it was, no temporary file is left */
    CHECK(bm_st_writer_open(&w, path, outs, 2, NULL) == 0);
    CHECK(bm_st_writer_put(&w, 1, 0, a, 3 * 4) == 0);
    bm_st_writer_abort(&w);
    CHECK(bm_st_open(path, &f) == 0);
    CHECK(((const float *)bm_st_data(&f, bm_st_find(&f, "b")))[0] == 7);
    DIR *d = opendir(tmpdir);
    CHECK(d);
    struct dirent *e;
    int temps = 0;
    while ((e = readdir(d)))
        temps += strstr(e->d_name, "stream.safetensors.tmp") != NULL;
    closedir(d);
    CHECK(temps == 0);
out:
    bm_st_close(&f);
    bm_st_writer_abort(&w);
    report("streaming writer: parts in any order, zeros where unwritten, bounds, commit and abort", !why[0], why);
}

static void test_conversion(void)
{
    char why[1024] = "";
    bm_st_file f = {0};
    float *all = NULL;
    uint16_t *bits = malloc(65536 * sizeof *bits);
    uint16_t h[] = {0x3C00, 0xC100, 0x7BFF, 0xFBFF, 0x0001, 0x03FF, 0x0400, 0x7C00, 0xFC00, 0x7E00, 0x8000, 0x3555, 0x8001};
    uint16_t b[] = {0x3F80, 0xC020, 0x477F, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x8000, 0x4049};
    for (int i = 0; i < 65536; i++)
        bits[i] = (uint16_t)i;
    bm_st_out outs[] = {
        {"h", BM_DT_F16, 1, {(int64_t)(sizeof h / 2)}, h},
        {"b", BM_DT_BF16, 1, {(int64_t)(sizeof b / 2)}, b},
        {"all", BM_DT_F16, 2, {256, 256}, bits},
    };
    const char *path = tpath("conv.safetensors");
    CHECK(bm_st_write(path, outs, 3, NULL) == 0);
    CHECK(bm_st_open(path, &f) == 0);
    float hv[13], bv[9];
    CHECK(bm_st_to_f32(&f, bm_st_find(&f, "h"), hv) == 0);
    CHECK(hv[0] == 1.0f);
    CHECK(hv[1] == -2.5f);
    CHECK(hv[2] == 65504.0f);
    CHECK(hv[3] == -65504.0f);
    CHECK(hv[4] == ldexpf(1.0f, -24));          /* smallest subnormal */
    CHECK(hv[5] == 1023.0f * ldexpf(1.0f, -24)); /* largest subnormal */
    CHECK(hv[6] == ldexpf(1.0f, -14));          /* smallest normal */
    CHECK(isinf(hv[7]) && hv[7] > 0);
    CHECK(isinf(hv[8]) && hv[8] < 0);
    CHECK(isnan(hv[9]));
    CHECK(hv[10] == 0.0f && signbit(hv[10]));
    CHECK(hv[11] == 0.333251953125f);
    CHECK(hv[12] == -ldexpf(1.0f, -24));
    CHECK(bm_st_to_f32(&f, bm_st_find(&f, "b"), bv) == 0);
    CHECK(bv[0] == 1.0f);
    CHECK(bv[1] == -2.5f);
    CHECK(bv[2] == 65280.0f);
    CHECK(bv[3] == ldexpf(1.0f, -133)); /* bf16 subnormal */
    CHECK(isinf(bv[4]) && bv[4] > 0);
    CHECK(isinf(bv[5]) && bv[5] < 0);
    CHECK(isnan(bv[6]));
    CHECK(bv[7] == 0.0f && signbit(bv[7]));
    CHECK(bv[8] == 3.140625f);
    /* Every F16 bit pattern against an independent ldexp-based decoding. */
    all = malloc(65536 * sizeof *all);
    CHECK(bm_st_to_f32(&f, bm_st_find(&f, "all"), all) == 0);
    int bad = -1;
    for (int i = 0; i < 65536 && bad < 0; i++) {
        float r = f16_reference((uint16_t)i);
        if (isnan(r) ? !isnan(all[i]) : (memcmp(&r, &all[i], 4) != 0))
            bad = i;
    }
    if (bad >= 0)
        snprintf(why, sizeof why, "F16 0x%04x -> %g, expected %g", bad, all[bad], f16_reference((uint16_t)bad));
    CHECK(bad < 0);
    why[0] = 0;
out:
    report("F16/BF16 -> f32 (1, -2.5, 65504, subnormals, inf, nan, -0; all 65536 F16 values)", !why[0], why);
    bm_st_close(&f);
    free(all);
    free(bits);
}

static void test_unaligned(void)
{
    char why[1024] = "";
    bm_st_file f = {0};
    /* Header padded with spaces so the data section starts at an odd offset; F32 values must
     * still convert correctly (the reader may not assume alignment). */
    char hdr[128] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  ";
    while ((8 + strlen(hdr)) % 8 != 3)
        strcat(hdr, " ");
    float vals[2] = {1.5f, -7.25f};
    size_t hl = strlen(hdr);
    unsigned char buf[256];
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    memcpy(buf + 8 + hl, vals, 8);
    const char *path = tpath("unaligned.safetensors");
    CHECK(write_bytes(path, buf, 16 + hl) == 0);
    CHECK(bm_st_open(path, &f) == 0);
    CHECK(((uintptr_t)f.data) % 4 != 0);
    float got[2];
    CHECK(bm_st_to_f32(&f, bm_st_find(&f, "x"), got) == 0 && got[0] == 1.5f && got[1] == -7.25f);
    why[0] = 0;
out:
    report("unaligned data section, trailing header spaces", !why[0], why);
    bm_st_close(&f);
}

/* ---- fixtures ---- */

static int fixtures_found;

static void check_fixture_file(const char *path)
{
    char why[1024] = "";
    bm_st_file f = {0};
    float *buf = NULL;
    fixtures_found++;
    CHECK(bm_st_open(path, &f) == 0);
    CHECK(f.n > 0);
    for (int i = 0; i < f.n; i++) {
        const bm_st_tensor *t = &f.tensors[i];
        CHECK(bm_st_find(&f, t->name) == t);
        if (t->dtype != BM_DT_F32 && t->dtype != BM_DT_F16 && t->dtype != BM_DT_BF16)
            continue;
        free(buf);
        buf = malloc((size_t)(t->nelem ? t->nelem : 1) * sizeof *buf);
        CHECK(bm_st_to_f32(&f, t, buf) == 0);
        for (uint64_t k = 0; k < t->nelem; k++)
            CHECK(isfinite(buf[k]));
    }
    why[0] = 0;
out:;
    char name[4200];
    snprintf(name, sizeof name, "fixture %s (%d tensors)", path, f.n);
    report(name, !why[0], why);
    bm_st_close(&f);
    free(buf);
}

static void walk_fixtures(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d || depth > 6) {
        if (d)
            closedir(d);
        return;
    }
    struct dirent *de;
    char **names = NULL;
    int n = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        names = realloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    /* Sorted, for a stable output order. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(p, &st) == 0) {
            size_t l = strlen(names[i]);
            if (S_ISDIR(st.st_mode))
                walk_fixtures(p, depth + 1);
            else if (l > 12 && strcmp(names[i] + l - 12, ".safetensors") == 0)
                check_fixture_file(p);
            if (strcmp(names[i], "model.safetensors") == 0) {
                bm_st_set s;
                int rc = bm_st_set_open(dir, &s);
                const bm_st_file *sf = NULL;
                int ok = rc == 0 && s.n_files == 1 && s.files[0].n > 0 &&
                         bm_st_set_find(&s, s.files[0].tensors[0].name, &sf) == &s.files[0].tensors[0] &&
                         sf == &s.files[0];
                char name[4200];
                snprintf(name, sizeof name, "fixture set %s", dir);
                report(name, ok, bmojo_last_error());
                if (rc == 0)
                    bm_st_set_close(&s);
            }
        }
        free(names[i]);
    }
    free(names);
}

static void test_fixtures(void)
{
    const char *dir = getenv("BMOJO_FIXTURES");
    if (!dir || !dir[0]) {
        printf("SKIP fixtures: BMOJO_FIXTURES is not set\n");
        return;
    }
    walk_fixtures(dir, 0);
    report("fixtures: at least one .safetensors file found", fixtures_found > 0, dir);
}

/* ---- corrupted files ---- */

static void expect_format_error(const char *label, const char *path, const char *word, const char *tensor)
{
    char why[2048] = "";
    bm_st_file f;
    memset(&f, 0x5A, sizeof f);
    int rc = bm_st_open(path, &f);
    const char *msg = bmojo_last_error();
    if (rc != BMOJO_EFORMAT)
        snprintf(why, sizeof why, "expected EFORMAT, got %d (%s)", rc, msg);
    else if (!strstr(msg, path))
        snprintf(why, sizeof why, "message does not name the file: %s", msg);
    else if (!strstr(msg, word))
        snprintf(why, sizeof why, "message lacks '%s': %s", word, msg);
    else if (tensor && !strstr(msg, tensor))
        snprintf(why, sizeof why, "message does not name tensor %s: %s", tensor, msg);
    else if (f.tensors || f.file || f.path || f.metadata_json || f.n)
        snprintf(why, sizeof why, "output not cleared on error");
    char name[256];
    snprintf(name, sizeof name, "corrupt: %s -> EFORMAT '%s'", label, word);
    report(name, !why[0], why);
    if (!why[0])
        printf("     (%s)\n", msg);
    if (rc == 0)
        bm_st_close(&f);
}

#define ENTRY(name, dt, shape, b, e) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_corrupt(void)
{
    const uint64_t AUTO = ~(uint64_t)0;
    const char *ok2 = "{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("b", "F32", "[1]", 8, 12) "}";

    /* The well-formed base the corruptions start from must itself load. */
    {
        bm_st_file f;
        int rc = bm_st_open(write_raw("base.safetensors", AUTO, ok2, 12), &f);
        report("corrupt corpus base file loads", rc == 0 && f.n == 2, bmojo_last_error());
        if (!rc)
            bm_st_close(&f);
    }

    write_bytes(tpath("short.safetensors"), "\x08\0\0\0", 4);
    expect_format_error("file shorter than 8 bytes", tpath("short.safetensors"), "shorter", NULL);
    write_bytes(tpath("zero.safetensors"), "", 0);
    expect_format_error("empty file", tpath("zero.safetensors"), "shorter", NULL);
    expect_format_error("header length past end of file",
                        write_raw("past.safetensors", strlen(ok2) + 13, ok2, 12), "past the end", NULL);
    expect_format_error("header length > 100 MB", write_raw("huge_hdr.safetensors", 200000000ull, ok2, 12), "limit", NULL);
    expect_format_error("header length 2^64-1", write_raw("max_hdr.safetensors", AUTO - 1, ok2, 12), "limit", NULL);
    expect_format_error("header not JSON", write_raw("notjson.safetensors", AUTO, "{\"a\": {\"dtype\"", 0), "not valid JSON", NULL);
    expect_format_error("header padded with NULs", write_raw_n("nulpad.safetensors", AUTO, "{}\0\0\0\0\0\0", 8, 0), "not valid JSON", NULL);
    expect_format_error("header a JSON array", write_raw("array.safetensors", AUTO, "[1, 2]", 0), "not a JSON object", NULL);
    expect_format_error("unknown dtype",
                        write_raw("dtype.safetensors", AUTO, "{" ENTRY("a", "F8", "[2]", 0, 2) "}", 2), "unknown dtype", "'a'");
    expect_format_error("dtype lower case",
                        write_raw("dtype2.safetensors", AUTO, "{" ENTRY("a", "f32", "[2]", 0, 8) "}", 8), "unknown dtype", "'a'");
    expect_format_error("dtype not a string",
                        write_raw("dtype3.safetensors", AUTO, "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                        "dtype", "'a'");
    expect_format_error("shape with negative dim",
                        write_raw("neg.safetensors", AUTO, "{" ENTRY("a", "F32", "[2,-1]", 0, 8) "}", 8), "negative", "'a'");
    expect_format_error("shape with fractional dim",
                        write_raw("frac.safetensors", AUTO, "{" ENTRY("a", "F32", "[2.0]", 0, 8) "}", 8), "not an integer", "'a'");
    expect_format_error("shape with 9 dims",
                        write_raw("dims.safetensors", AUTO, "{" ENTRY("a", "U8", "[1,1,1,1,1,1,1,1,1]", 0, 1) "}", 1), "dims", "'a'");
    expect_format_error("shape not an array",
                        write_raw("shape_obj.safetensors", AUTO, "{" ENTRY("a", "F32", "2", 0, 8) "}", 8), "not an array", "'a'");
    expect_format_error("shape * dtype size != byte range",
                        write_raw("mismatch.safetensors", AUTO, "{" ENTRY("a", "F32", "[3]", 0, 8) "}", 8), "size mismatch", "'a'");
    expect_format_error("F16 size mismatch",
                        write_raw("mismatch16.safetensors", AUTO, "{" ENTRY("a", "F16", "[2,2]", 0, 16) "}", 16), "size mismatch", "'a'");
    expect_format_error("data_offsets out of bounds",
                        write_raw("oob.safetensors", AUTO,
                                  "{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("b", "F32", "[4]", 8, 24) "}", 12),
                        "out of bounds", "'b'");
    expect_format_error("data_offsets far out of bounds",
                        write_raw("oob2.safetensors", AUTO, "{" ENTRY("a", "U8", "[4]", 1000000000000, 1000000000004) "}", 4),
                        "out of bounds", "'a'");
    expect_format_error("overlapping tensors",
                        write_raw("overlap.safetensors", AUTO,
                                  "{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("b", "F32", "[1]", 4, 8) "}", 8),
                        "overlapping", "'b'");
    expect_format_error("identical ranges",
                        write_raw("same.safetensors", AUTO,
                                  "{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("b", "F32", "[2]", 0, 8) "}", 8),
                        "overlapping", "'a'");
    expect_format_error("gap between tensors",
                        write_raw("gap.safetensors", AUTO,
                                  "{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("b", "F32", "[1]", 12, 16) "}", 16),
                        "gap", "'b'");
    expect_format_error("gap before the first tensor",
                        write_raw("gap0.safetensors", AUTO, "{" ENTRY("a", "F32", "[1]", 4, 8) "}", 8), "gap", "'a'");
    expect_format_error("trailing data not covered",
                        write_raw("tail.safetensors", AUTO, "{" ENTRY("a", "F32", "[1]", 0, 4) "}", 8), "gap", "'a'");
    expect_format_error("data but no tensors", write_raw("nodata.safetensors", AUTO, "{}", 4), "gap", NULL);
    expect_format_error("begin > end",
                        write_raw("order.safetensors", AUTO, "{" ENTRY("a", "F32", "[1]", 8, 4) "}", 8), "begin > end", "'a'");
    expect_format_error("negative offset",
                        write_raw("negoff.safetensors", AUTO, "{" ENTRY("a", "F32", "[1]", -4, 0) "}", 4), "data_offsets", "'a'");
    expect_format_error("three offsets",
                        write_raw("offs3.safetensors", AUTO, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,4]}}", 4),
                        "data_offsets", "'a'");
    expect_format_error("duplicate names",
                        write_raw("dup.safetensors", AUTO,
                                  "{" ENTRY("a", "F32", "[1]", 0, 4) "," ENTRY("a", "F32", "[1]", 4, 8) "}", 8),
                        "duplicate", "a");
    expect_format_error("shape overflowing uint64 (elements)",
                        write_raw("ovf.safetensors", AUTO, "{" ENTRY("a", "F32", "[4294967296,4294967296,2]", 0, 0) "}", 0),
                        "overflow", "'a'");
    expect_format_error("shape overflowing uint64 (bytes)",
                        write_raw("ovf2.safetensors", AUTO, "{" ENTRY("a", "F32", "[4611686018427387904,2]", 0, 0) "}", 0),
                        "overflow", "'a'");
    expect_format_error("shape wrapping to a small product",
                        write_raw("ovf3.safetensors", AUTO, "{" ENTRY("a", "U8", "[4294967296,4294967296,1]", 0, 0) "}", 0),
                        "overflow", "'a'");
    expect_format_error("missing shape",
                        write_raw("noshape.safetensors", AUTO, "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), "shape", "'a'");
    expect_format_error("unknown key in entry",
                        write_raw("extra.safetensors", AUTO,
                                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4),
                        "unknown key", "'a'");
    expect_format_error("entry not an object", write_raw("entry.safetensors", AUTO, "{\"a\":[1]}", 0), "not a JSON object", "'a'");
    expect_format_error("metadata value not a string",
                        write_raw("meta.safetensors", AUTO, "{\"__metadata__\":{\"k\":1}}", 0), "__metadata__", NULL);
    expect_format_error("escaped NUL in a name",
                        write_raw("nulname.safetensors", AUTO, "{" ENTRY("a\\u0000b", "F32", "[1]", 0, 4) "}", 4), "NUL", NULL);

    /* Truncated data section: a valid file cut short by one byte. */
    {
        float v[5] = {1, 2, 3, 4, 5};
        bm_st_out o[] = {{"a", BM_DT_F32, 1, {3}, v}, {"b", BM_DT_F32, 1, {2}, v + 3}};
        const char *p = tpath("trunc.safetensors");
        long sz = 0;
        int ok = bm_st_write(p, o, 2, NULL) == 0 && file_size_of(p, &sz) == 0 && truncate(p, sz - 1) == 0;
        if (!ok)
            report("corrupt: truncated data section (setup)", 0, bmojo_last_error());
        else
            expect_format_error("truncated data section", p, "truncated", "'b'");
    }

    /* Valid edge cases the checks must not reject. */
    {
        bm_st_file f;
        const char *hdr = "{" ENTRY("a", "F32", "[1]", 0, 4) "," ENTRY("z0", "F32", "[0,5]", 4, 4) ","
                          ENTRY("z1", "I64", "[]", 4, 12) "," ENTRY("z2", "BOOL", "[0]", 12, 12) "}";
        int rc = bm_st_open(write_raw("edge.safetensors", AUTO, hdr, 12), &f);
        int ok = rc == 0 && f.n == 4 && bm_st_find(&f, "z1")->nelem == 1 && bm_st_find(&f, "z0")->nelem == 0;
        report("valid: zero-size tensors at shared offsets, 0-d I64, BOOL", ok, bmojo_last_error());
        if (!rc)
            bm_st_close(&f);
    }

    /* Open failures are EIO. */
    {
        bm_st_file f;
        const char *p = tpath("does-not-exist.safetensors");
        int rc = bm_st_open(p, &f);
        report("missing file -> EIO naming it", rc == BMOJO_EIO && strstr(bmojo_last_error(), p), bmojo_last_error());
        rc = bm_st_open(tmpdir, &f);
        report("directory -> EIO", rc == BMOJO_EIO, bmojo_last_error());
    }
}

/* ---- sharded sets ---- */

static const char *mkdir_in(const char *name)
{
    const char *p = tpath(name);
    mkdir(p, 0755);
    return p;
}

static int write_text(const char *dir, const char *name, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return write_bytes(p, text, strlen(text));
}

static int write_shard(const char *dir, const char *name, const bm_st_out *o, int n)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return bm_st_write(p, o, n, NULL);
}

static void test_sharded(void)
{
    char why[1024] = "";
    bm_st_set s = {0};
    float va[3] = {1, 2, 3}, vb[2] = {4, 5}, vc[1] = {6};
    uint16_t vd[2] = {0x3C00, 0x4000};
    bm_st_out s1[] = {{"layer.0.w", BM_DT_F32, 1, {3}, va}, {"embed", BM_DT_F32, 2, {1, 2}, vb}};
    bm_st_out s2[] = {{"layer.1.w", BM_DT_F32, 1, {1}, vc}, {"norm", BM_DT_F16, 1, {2}, vd}};
    const char *dir = mkdir_in("sharded");
    const char *sh1 = "model-00001-of-00002.safetensors", *sh2 = "model-00002-of-00002.safetensors";
    CHECK(write_shard(dir, sh1, s1, 2) == 0 && write_shard(dir, sh2, s2, 2) == 0);
    CHECK(write_text(dir, "model.safetensors.index.json",
                     "{\"metadata\": {\"total_size\": 28}, \"weight_map\": {"
                     "\"embed\": \"model-00001-of-00002.safetensors\", \"layer.0.w\": \"model-00001-of-00002.safetensors\","
                     "\"layer.1.w\": \"model-00002-of-00002.safetensors\", \"norm\": \"model-00002-of-00002.safetensors\"}}") == 0);
    CHECK(bm_st_set_open(dir, &s) == 0);
    CHECK(s.n_files == 2);
    const bm_st_file *f = NULL;
    const bm_st_tensor *t = bm_st_set_find(&s, "embed", &f);
    CHECK(t && f && strstr(f->path, sh1) && t->ndim == 2 && memcmp(bm_st_data(f, t), vb, 8) == 0);
    t = bm_st_set_find(&s, "layer.0.w", &f);
    CHECK(t && f && strstr(f->path, sh1) && memcmp(bm_st_data(f, t), va, 12) == 0);
    t = bm_st_set_find(&s, "layer.1.w", &f);
    CHECK(t && f && strstr(f->path, sh2) && memcmp(bm_st_data(f, t), vc, 4) == 0);
    t = bm_st_set_find(&s, "norm", &f);
    float nv[2];
    CHECK(t && f && strstr(f->path, sh2) && bm_st_to_f32(f, t, nv) == 0 && nv[0] == 1.0f && nv[1] == 2.0f);
    CHECK(bm_st_set_find(&s, "absent", &f) == NULL && f == NULL);
    bm_st_set_close(&s);
    CHECK(s.files == NULL && s.n_files == 0);

    /* A folder with model.safetensors uses it (one file). */
    const char *single = mkdir_in("single");
    CHECK(write_shard(single, "model.safetensors", s1, 2) == 0);
    CHECK(bm_st_set_open(single, &s) == 0 && s.n_files == 1 && bm_st_set_find(&s, "embed", &f) && f == &s.files[0]);
    bm_st_set_close(&s);
    why[0] = 0;
out:
    report("sharded set: two shards + index.json, tensors found in both", !why[0], why);
    bm_st_set_close(&s);

    /* Failures. Each case gets its own folder holding the two good shards. */
    struct {
        const char *label, *index;
        int rc;
        const char *word;
    } cases[] = {
        {"index naming a missing shard -> EIO",
         "{\"weight_map\": {\"embed\": \"model-00001-of-00002.safetensors\", \"x\": \"model-00003-of-00003.safetensors\"}}",
         BMOJO_EIO, "model-00003-of-00003.safetensors"},
        {"weight_map tensor absent from its shard -> EFORMAT",
         "{\"weight_map\": {\"embed\": \"model-00001-of-00002.safetensors\", \"norm\": \"model-00001-of-00002.safetensors\"}}",
         BMOJO_EFORMAT, "'norm'"},
        {"shard name with '/' -> EFORMAT", "{\"weight_map\": {\"embed\": \"../sharded/model-00001-of-00002.safetensors\"}}",
         BMOJO_EFORMAT, "'..'"},
        {"shard name with '..' -> EFORMAT", "{\"weight_map\": {\"embed\": \"..\"}}", BMOJO_EFORMAT, "'..'"},
        {"index not JSON -> EFORMAT", "{\"weight_map\": {", BMOJO_EFORMAT, "not valid JSON"},
        {"index without weight_map -> EFORMAT", "{\"metadata\": {}}", BMOJO_EFORMAT, "weight_map"},
        {"weight_map value not a string -> EFORMAT", "{\"weight_map\": {\"embed\": 1}}", BMOJO_EFORMAT, "'embed'"},
        {"tensor in two shards -> EFORMAT",
         "{\"weight_map\": {\"embed\": \"model-00001-of-00002.safetensors\", \"dup\": \"dup.safetensors\"}}",
         BMOJO_EFORMAT, "two shards"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char d[64];
        snprintf(d, sizeof d, "badset%zu", i);
        const char *bd = mkdir_in(d);
        bm_st_out dupo[] = {{"embed", BM_DT_F32, 2, {1, 2}, vb}, {"dup", BM_DT_F32, 1, {1}, vc}};
        int setup = write_shard(bd, sh1, s1, 2) == 0 && write_shard(bd, sh2, s2, 2) == 0 &&
                    write_shard(bd, "dup.safetensors", dupo, 2) == 0 &&
                    write_text(bd, "model.safetensors.index.json", cases[i].index) == 0;
        bm_st_set bs;
        int rc = setup ? bm_st_set_open(bd, &bs) : -999;
        const char *msg = bmojo_last_error();
        int ok = rc == cases[i].rc && strstr(msg, cases[i].word) != NULL;
        report(cases[i].label, ok, msg);
        if (ok)
            printf("     (%s)\n", msg);
        if (rc == 0)
            bm_st_set_close(&bs);
    }
    {
        const char *ed = mkdir_in("emptyset");
        bm_st_set bs;
        int rc = bm_st_set_open(ed, &bs);
        char want[512];
        snprintf(want, sizeof want, "no model.safetensors or model.safetensors.index.json in %s", ed);
        report("folder with neither file -> EIO", rc == BMOJO_EIO && strstr(bmojo_last_error(), want), bmojo_last_error());
    }
}

/* ---- the shard index, from memory ---- */

static void test_index(void)
{
    char why[1024] = "";
    bm_st_index ix = {0};
    char *big = NULL;
    /* Shards numbered in order of first mention, each entry pointing at its own. */
    const char *small = "{\"metadata\": {}, \"weight_map\": {\"a\": \"s2\", \"b\": \"s1\", \"c\": \"s2\", "
                        "\"d\": \"s3\", \"e\": \"s1\"}}";
    CHECK(bm_st_index_parse(small, strlen(small), "small.json", &ix) == 0);
    CHECK(ix.n == 5 && ix.n_shards == 3);
    CHECK(!strcmp(ix.shards[0], "s2") && !strcmp(ix.shards[1], "s1") && !strcmp(ix.shards[2], "s3"));
    CHECK(ix.shard_of[0] == 0 && ix.shard_of[1] == 1 && ix.shard_of[2] == 0 && ix.shard_of[3] == 2 && ix.shard_of[4] == 1);
    CHECK(!strcmp(ix.names[0], "a") && !strcmp(ix.names[4], "e"));
    bm_st_index_free(&ix);
    CHECK(ix.json == NULL && ix.shards == NULL && ix.shard_of == NULL);

    /* 200k entries, every one naming its own shard: n log n (the former pairwise search took
     * about 90 s here; SIGALRM ends the test if it comes back). Then 200k entries over 3 shards. */
    const int n = 200000;
    big = malloc((size_t)n * 48 + 64);
    CHECK(big);
    for (int pass = 0; pass < 2; pass++) {
        size_t o = (size_t)sprintf(big, "{\"weight_map\": {");
        for (int i = 0; i < n; i++)
            o += (size_t)sprintf(big + o, "%s\"t%d\": \"s%d.safetensors\"", i ? ", " : "", i, pass ? i % 3 : i);
        o += (size_t)sprintf(big + o, "}}");
        alarm(60);
        int rc = bm_st_index_parse(big, o, "big.json", &ix);
        alarm(0);
        CHECK(rc == 0 && ix.n == (size_t)n && ix.n_shards == (pass ? 3 : n));
        int right = 1;
        for (int i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof want, "s%d.safetensors", pass ? i % 3 : i);
            right = right && ix.shard_of[i] == (pass ? i % 3 : i) && !strcmp(ix.shards[ix.shard_of[i]], want);
        }
        CHECK(right);
        bm_st_index_free(&ix);
    }
    why[0] = 0;
out:
    report("shard index from memory: shards in order of first mention, 200k entries (200k or 3 shards)", !why[0], why);
    bm_st_index_free(&ix);
    free(big);

    struct {
        const char *label, *text, *word;
    } bad[] = {
        {"index: empty weight_map", "{\"weight_map\": {}}", "empty"},
        {"index: weight_map not an object", "{\"weight_map\": []}", "weight_map"},
        {"index: shard name empty", "{\"weight_map\": {\"x\": \"\"}}", "'x'"},
        {"index: shard name with a NUL", "{\"weight_map\": {\"x\": \"a\\u0000b\"}}", "'x'"},
        {"index: shard name with '/'", "{\"weight_map\": {\"x\": \"/etc/passwd\"}}", "'/etc/passwd'"},
        {"index: top level not an object", "[1, 2]", "weight_map"},
        {"index: not JSON", "{\"weight_map\": {\"x\": ", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = bm_st_index_parse(bad[i].text, strlen(bad[i].text), "bad.json", &ix);
        const char *msg = bmojo_last_error();
        report(bad[i].label, rc == BMOJO_EFORMAT && strstr(msg, "bad.json") && strstr(msg, bad[i].word) && !ix.json, msg);
        bm_st_index_free(&ix);
    }
}

/* ---- temp dir cleanup ---- */

static void remove_tree(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && depth < 2)
            remove_tree(p, depth + 1);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    strcpy(tmpdir, "/tmp/bmojo_st_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    report("dtype sizes and names",
           bm_dtype_size(BM_DT_F32) == 4 && bm_dtype_size(BM_DT_BF16) == 2 && bm_dtype_size(BM_DT_I64) == 8 &&
               bm_dtype_size(BM_DT_BOOL) == 1 && bm_dtype_size(BM_DT_COUNT) == 0 &&
               strcmp(bm_dtype_name(BM_DT_BF16), "BF16") == 0 && strcmp(bm_dtype_name(BM_DT_U8), "U8") == 0,
           "wrong table");
    test_round_trip();
    test_write_errors();
    test_streaming_writer();
    test_conversion();
    test_unaligned();
    test_corrupt();
    test_sharded();
    test_index();
    test_fixtures();
    remove_tree(tmpdir, 0);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
