/* test_json.c — tests of the strict JSON parser (src/json.c): valid documents are parsed into the
 * right tree (nesting, member order, escapes, UTF-8, surrogate pairs, exact int64, doubles), and
 * invalid documents are rejected with BMOJO_EFORMAT and an error naming the byte offset.
 * Prints one line per test, then "N passed, N failed"; exits non-zero on any failure. */
#include "bmojo.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_pass, n_fail;

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
            snprintf(why, sizeof why, "line %d: %s", __LINE__, #cond);                              \
            goto out;                                                                               \
        }                                                                                           \
    } while (0)

static bm_json *parse_ok(const char *text, char *why, size_t why_len)
{
    bm_json *j = NULL;
    char err[256];
    int rc = bm_json_parse(text, strlen(text), &j, err, sizeof err);
    if (rc != 0) {
        snprintf(why, why_len, "parse failed (%d): %s", rc, err);
        return NULL;
    }
    return j;
}

static void test_nesting(void)
{
    char why[512] = "";
    bm_json *j = parse_ok(" {\"b\": [1, [2, {\"c\": null}], true, false], \"a\": {}, \"z\": [] } \n", why, sizeof why);
    if (!j)
        goto out;
    CHECK(j->type == BM_JSON_OBJECT && j->count == 3);
    /* Member order is kept. */
    CHECK(strcmp(j->keys[0], "b") == 0 && strcmp(j->keys[1], "a") == 0 && strcmp(j->keys[2], "z") == 0);
    const bm_json *b = bm_json_get(j, "b");
    CHECK(b && b->type == BM_JSON_ARRAY && b->count == 4);
    CHECK(b->items[0].type == BM_JSON_NUMBER && b->items[0].is_integer && b->items[0].integer == 1);
    CHECK(b->items[1].type == BM_JSON_ARRAY && b->items[1].count == 2);
    const bm_json *inner = &b->items[1].items[1];
    CHECK(inner->type == BM_JSON_OBJECT && bm_json_get(inner, "c") && bm_json_get(inner, "c")->type == BM_JSON_NULL);
    CHECK(b->items[2].type == BM_JSON_BOOL && b->items[2].boolean == 1);
    CHECK(b->items[3].type == BM_JSON_BOOL && b->items[3].boolean == 0);
    CHECK(bm_json_get(j, "a")->type == BM_JSON_OBJECT && bm_json_get(j, "a")->count == 0);
    CHECK(bm_json_get(j, "z")->type == BM_JSON_ARRAY && bm_json_get(j, "z")->count == 0);
    CHECK(bm_json_get(j, "missing") == NULL);
    CHECK(bm_json_get(b, "b") == NULL); /* not an object */
    why[0] = 0;
out:
    report("nesting, member order, literals", !why[0], why);
    bm_json_free(j);
}

static void test_scalars_top_level(void)
{
    char why[512] = "";
    bm_json *j = NULL;
    j = parse_ok("\"x\"", why, sizeof why);
    if (!j)
        goto out;
    CHECK(j->type == BM_JSON_STRING && strcmp(j->string, "x") == 0 && j->string_len == 1);
    bm_json_free(j);
    j = parse_ok("  null", why, sizeof why);
    if (!j)
        goto out;
    CHECK(j->type == BM_JSON_NULL);
    bm_json_free(j);
    j = parse_ok("-0", why, sizeof why);
    if (!j)
        goto out;
    CHECK(j->type == BM_JSON_NUMBER && j->is_integer && j->integer == 0 && j->number == 0.0);
    why[0] = 0;
out:
    report("top-level scalars", !why[0], why);
    bm_json_free(j);
}

static void test_escapes(void)
{
    char why[512] = "";
    /* All two-character escapes, \u escapes for ASCII, 2-byte, 3-byte, a surrogate pair (U+1F600)
     * and \u0000 (kept, with string_len counting past it). */
    const char *text = "[\"q\\\"b\\\\s\\/n\\nt\\tr\\rb\\bf\\f\", \"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\", \"a\\u0000b\"]";
    bm_json *j = parse_ok(text, why, sizeof why);
    if (!j)
        goto out;
    CHECK(j->type == BM_JSON_ARRAY && j->count == 3);
    const char *e0 = "q\"b\\s/n\nt\tr\rb\bf\f";
    CHECK(j->items[0].string_len == strlen(e0) && memcmp(j->items[0].string, e0, strlen(e0) + 1) == 0);
    const char *e1 = "A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    CHECK(j->items[1].string_len == strlen(e1) && strcmp(j->items[1].string, e1) == 0);
    CHECK(j->items[2].string_len == 3 && memcmp(j->items[2].string, "a\0b", 4) == 0);
    why[0] = 0;
out:
    report("string escapes and surrogate pairs", !why[0], why);
    bm_json_free(j);
}

static void test_raw_utf8(void)
{
    char why[512] = "";
    /* Raw multi-byte UTF-8 (2, 3, 4 bytes) passes through unchanged, also as keys. */
    const char *text = "{\"\xC3\xA9t\xC3\xA9\": \"\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80\"}";
    bm_json *j = parse_ok(text, why, sizeof why);
    if (!j)
        goto out;
    const bm_json *v = bm_json_get(j, "\xC3\xA9t\xC3\xA9");
    CHECK(v && v->type == BM_JSON_STRING && strcmp(v->string, "\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80") == 0);
    why[0] = 0;
out:
    report("raw UTF-8 in keys and values", !why[0], why);
    bm_json_free(j);
}

static void test_numbers(void)
{
    char why[512] = "";
    const char *text = "[0, -1, 42, 9223372036854775807, -9223372036854775808, 9223372036854775808, "
                       "1.5, -2.5e3, 1E-2, 6.02e+23, 1e2, 0.1, 123456789012345678901234567890, 9007199254740993]";
    bm_json *j = parse_ok(text, why, sizeof why);
    if (!j)
        goto out;
    CHECK(j->count == 14);
    bm_json *it = j->items;
    CHECK(it[0].is_integer && it[0].integer == 0);
    CHECK(it[1].is_integer && it[1].integer == -1 && it[1].number == -1.0);
    CHECK(it[2].is_integer && it[2].integer == 42 && it[2].number == 42.0);
    CHECK(it[3].is_integer && it[3].integer == INT64_MAX);
    CHECK(it[4].is_integer && it[4].integer == INT64_MIN);
    CHECK(!it[5].is_integer && it[5].number == 9223372036854775808.0); /* does not fit int64 */
    CHECK(!it[6].is_integer && it[6].number == 1.5);
    CHECK(!it[7].is_integer && it[7].number == -2500.0);
    CHECK(!it[8].is_integer && it[8].number == 0.01);
    CHECK(!it[9].is_integer && it[9].number == 6.02e23);
    CHECK(!it[10].is_integer && it[10].number == 100.0); /* exponent: not an integer literal */
    CHECK(!it[11].is_integer && it[11].number == 0.1);
    CHECK(!it[12].is_integer && fabs(it[12].number - 1.2345678901234568e29) < 1e14);
    /* Above 2^53: the integer is exact, the double is the rounded value. */
    CHECK(it[13].is_integer && it[13].integer == 9007199254740993LL);
    for (size_t i = 0; i < j->count; i++)
        CHECK(it[i].type == BM_JSON_NUMBER);
    why[0] = 0;
out:
    report("numbers (int64 limits, negatives, fractions, exponents)", !why[0], why);
    bm_json_free(j);
}

static char *nested(int depth, const char *open, const char *close)
{
    size_t ol = strlen(open), cl = strlen(close);
    char *s = malloc((size_t)depth * (ol + cl) + 2);
    size_t p = 0;
    for (int i = 0; i < depth; i++)
        memcpy(s + p, open, ol), p += ol;
    s[p++] = '1';
    for (int i = 0; i < depth; i++)
        memcpy(s + p, close, cl), p += cl;
    s[p] = 0;
    return s;
}

static void test_depth(void)
{
    char why[512] = "";
    char err[256];
    bm_json *j = NULL;
    char *d64 = nested(64, "[", "]");
    char *d65 = nested(65, "[", "]");
    char *o64 = nested(64, "{\"k\":", "}");
    char *o65 = nested(65, "{\"k\":", "}");
    char *huge = nested(100000, "[", "]"); /* must fail fast, without deep recursion */
    int rc = bm_json_parse(d64, strlen(d64), &j, err, sizeof err);
    CHECK(rc == 0 && j);
    const bm_json *x = j;
    for (int i = 0; i < 64; i++) {
        CHECK(x->type == BM_JSON_ARRAY && x->count == 1);
        x = &x->items[0];
    }
    CHECK(x->type == BM_JSON_NUMBER && x->integer == 1);
    bm_json_free(j);
    j = NULL;
    rc = bm_json_parse(o64, strlen(o64), &j, err, sizeof err);
    CHECK(rc == 0 && j);
    bm_json_free(j);
    j = NULL;
    rc = bm_json_parse(d65, strlen(d65), &j, err, sizeof err);
    CHECK(rc == BMOJO_EFORMAT && j == NULL && strstr(err, "nesting") && strstr(err, "offset 64"));
    rc = bm_json_parse(o65, strlen(o65), &j, err, sizeof err);
    CHECK(rc == BMOJO_EFORMAT && j == NULL && strstr(err, "nesting"));
    rc = bm_json_parse(huge, strlen(huge), &j, err, sizeof err);
    CHECK(rc == BMOJO_EFORMAT && j == NULL);
    why[0] = 0;
out:
    report("depth 64 accepted, 65 rejected", !why[0], why);
    bm_json_free(j);
    free(d64);
    free(d65);
    free(o64);
    free(o65);
    free(huge);
}

/* Each invalid document must fail with EFORMAT, leave *out NULL, and name the expected byte
 * offset (-1: do not check the exact offset, only that one is named). */
static void test_invalid(const char *label, const char *text, size_t len, long offset)
{
    char why[512] = "";
    char err[256] = "";
    bm_json *j = (bm_json *)1;
    int rc = bm_json_parse(text, len, &j, err, sizeof err);
    if (rc != BMOJO_EFORMAT) {
        snprintf(why, sizeof why, "expected EFORMAT, got %d", rc);
        if (rc == 0)
            bm_json_free(j);
    } else if (j != NULL) {
        snprintf(why, sizeof why, "*out not NULL on error");
    } else if (!strstr(err, "byte offset")) {
        snprintf(why, sizeof why, "error does not name the offset: %s", err);
    } else if (offset >= 0) {
        char want[64];
        snprintf(want, sizeof want, "byte offset %ld", offset);
        const char *at = strstr(err, want);
        if (!at || at[strlen(want)] != 0)
            snprintf(why, sizeof why, "expected '%s' in: %s", want, err);
    }
    char name[160];
    snprintf(name, sizeof name, "rejects %s", label);
    report(name, !why[0], why[0] ? why : err);
    if (!why[0])
        printf("     (%s)\n", err);
}

#define INVALID(label, text, off) test_invalid(label, text, sizeof(text) - 1, off)

int main(void)
{
    test_nesting();
    test_scalars_top_level();
    test_escapes();
    test_raw_utf8();
    test_numbers();
    test_depth();

    INVALID("empty input", "", 0);
    INVALID("whitespace only", "   ", 3);
    INVALID("truncated object", "{\"a\": 1", 7);
    INVALID("truncated array", "[1, 2", 5);
    INVALID("truncated string", "[\"abc", 1);
    INVALID("truncated literal", "tru", 0);
    INVALID("truncated \\u escape", "\"\\u12\"", 3);
    INVALID("trailing comma in array", "[1, 2,]", 6);
    INVALID("trailing comma in object", "{\"a\": 1,}", 8);
    INVALID("missing colon", "{\"a\" 1}", 5);
    INVALID("non-string key", "{1: 2}", 1);
    INVALID("single quotes", "['a']", 1);
    INVALID("bad escape \\x", "\"a\\x\"", 2);
    INVALID("bad hex in \\u", "\"\\u12G4\"", 5);
    INVALID("leading zero", "[01]", 1);
    INVALID("leading zero negative", "-012", 1);
    INVALID("plus sign", "+1", 0);
    INVALID("bare fraction", ".5", 0);
    INVALID("dot without digits", "1.", 2);
    INVALID("exponent without digits", "1e+", 3);
    INVALID("minus alone", "-", 1);
    INVALID("NaN", "NaN", 0);
    INVALID("Infinity", "[Infinity]", 1);
    INVALID("number overflowing double", "1e400", 0);
    INVALID("lone high surrogate", "\"\\ud83d\"", 1);
    INVALID("high surrogate + non-low", "\"\\ud83d\\u0041\"", 1);
    INVALID("lone low surrogate", "\"\\ude00x\"", 1);
    INVALID("raw control char in string", "\"a\tb\"", 2);
    INVALID("raw newline in string", "\"a\nb\"", 2);
    INVALID("invalid UTF-8 byte", "\"a\xFF\"", 2);
    INVALID("overlong UTF-8", "\"\xC0\xAF\"", 1);
    INVALID("overlong 3-byte UTF-8", "\"\xE0\x80\xAF\"", 1);
    INVALID("overlong 4-byte UTF-8", "\"\xF0\x8F\xBF\xBF\"", 1);
    INVALID("UTF-8 above U+10FFFF", "\"\xF4\x90\x80\x80\"", 1);
    INVALID("UTF-8 encoded surrogate", "\"\xED\xA0\x80\"", 1);
    INVALID("truncated UTF-8", "\"\xE2\x82\"", 1);
    INVALID("trailing garbage", "{} x", 3);
    INVALID("two values", "1 2", 2);
    INVALID("trailing garbage after number", "12a", 2);
    INVALID("NUL byte after value", "{}\0", 2);
    INVALID("duplicate key", "{\"a\": 1, \"b\": 2, \"a\": 3}", 0);
    INVALID("duplicate key differing after NUL only", "{\"a\\u0000b\": 1, \"a\\u0000b\": 2}", 0);
    INVALID("capitalized literal", "True", 0);
    INVALID("comment", "[1] // c", 4);

    /* Keys that differ only after an embedded NUL are distinct, not duplicates. */
    {
        char err[256];
        bm_json *j = NULL;
        const char *t = "{\"a\\u0000b\": 1, \"a\\u0000c\": 2}";
        int rc = bm_json_parse(t, strlen(t), &j, err, sizeof err);
        report("keys differing after an embedded NUL are distinct", rc == 0 && j && j->count == 2, err);
        bm_json_free(j);
    }
    /* Length, not NUL termination, bounds the input: a valid prefix of a longer buffer. */
    {
        char err[256];
        bm_json *j = NULL;
        const char *t = "[1,2]garbage";
        int rc = bm_json_parse(t, 5, &j, err, sizeof err);
        report("parses exactly len bytes", rc == 0 && j && j->count == 2, err);
        bm_json_free(j);
    }
    bm_json_free(NULL);

    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
