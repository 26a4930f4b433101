/* config_yaml.c — the native config.yaml loader (model contract section 4), on libyaml's
 * document API. Strict: unknown keys, keys of another layer type, duplicate keys, wrong value
 * types and out-of-range integers are errors naming the file, the layer and the key.
 *
 * Scalars are interpreted by this file, not by YAML tags: a number must be a plain (unquoted)
 * scalar that parses completely, so "heads: '4'" or "heads: 4.0" are errors, not guesses. */
#include "config_internal.h"

#include "error.h"
#include "file_read.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Limits on the file before libyaml builds a document from it: a config.yaml is a few KiB and
 * nests about 4 levels (top level, layers, one layer, a flow mapping). */
#define YAML_MAX_FILE (16u << 20)
#define YAML_MAX_DEPTH 64

typedef struct {
    const char *path;
    yaml_document_t *doc;
    char where[160]; /* "layers[2] (attention): " or "" for the top level */
} ctx_t;

static int line_of(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }

static int fail_key(const ctx_t *cx, const yaml_node_t *n, const char *key, const char *what)
{
    return bm_fail(BMOJO_ECONFIG, "%s:%d: %s%s: %s", cx->path, line_of(n), cx->where, key, what);
}

static int is_plain_scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* "key:", "key: ~", "key: null": treated as if the key were absent (its default applies). */
static int is_null(const yaml_node_t *n)
{
    if (!is_plain_scalar(n))
        return 0;
    const char *s = scalar(n);
    return !s[0] || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int get_int(const ctx_t *cx, const yaml_node_t *n, const char *key, int *out)
{
    char msg[200];
    if (!is_plain_scalar(n) || !scalar(n)[0]) {
        return fail_key(cx, n, key, n->type == YAML_SCALAR_NODE ? "expected an integer, got a string"
                                                                : "expected an integer");
    }
    const char *s = scalar(n);
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || s[0] == ' ' || s[0] == '\t') {
        snprintf(msg, sizeof msg, "expected an integer, got \"%.60s\"", s);
        return fail_key(cx, n, key, msg);
    }
    if (errno == ERANGE || v > INT_MAX || v < INT_MIN) {
        snprintf(msg, sizeof msg, "integer %.60s is out of range", s);
        return fail_key(cx, n, key, msg);
    }
    *out = (int)v;
    return 0;
}

static int get_float(const ctx_t *cx, const yaml_node_t *n, const char *key, float *out)
{
    char msg[200];
    if (!is_plain_scalar(n) || !scalar(n)[0])
        return fail_key(cx, n, key, "expected a number");
    const char *s = scalar(n);
    /* Decimal notation only: no hex floats, inf or nan. */
    int ok = strspn(s, "0123456789+-.eE") == strlen(s);
    char *end = NULL;
    errno = 0;
    double v = ok ? strtod(s, &end) : 0.0;
    if (!ok || end == s || *end) {
        snprintf(msg, sizeof msg, "expected a number, got \"%.60s\"", s);
        return fail_key(cx, n, key, msg);
    }
    if (!isfinite(v) || fabs(v) > 3.0e38) {
        snprintf(msg, sizeof msg, "number %.60s is out of range", s);
        return fail_key(cx, n, key, msg);
    }
    *out = (float)v;
    return 0;
}

static int get_bool(const ctx_t *cx, const yaml_node_t *n, const char *key, bool *out)
{
    if (is_plain_scalar(n)) {
        const char *s = scalar(n);
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
            *out = true;
            return 0;
        }
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
            *out = false;
            return 0;
        }
    }
    return fail_key(cx, n, key, "expected true or false");
}

/* Key node of a mapping pair as a string, or an error if the key is not a scalar. */
static int pair_key(const ctx_t *cx, yaml_node_pair_t *p, const char **key, yaml_node_t **kn, yaml_node_t **vn)
{
    *kn = yaml_document_get_node(cx->doc, p->key);
    *vn = yaml_document_get_node(cx->doc, p->value);
    if (!*kn || !*vn || (*kn)->type != YAML_SCALAR_NODE)
        return bm_fail(BMOJO_ECONFIG, "%s:%d: %sa mapping key must be a plain string", cx->path,
                       *kn ? line_of(*kn) : 0, cx->where);
    *key = scalar(*kn);
    return 0;
}

/* Duplicate keys are errors (YAML itself forbids them; libyaml does not check). */
static int check_duplicate(const ctx_t *cx, yaml_node_t *map, yaml_node_pair_t *p, const char *key,
                           const yaml_node_t *kn)
{
    for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
        yaml_node_t *qk = yaml_document_get_node(cx->doc, q->key);
        if (qk && qk->type == YAML_SCALAR_NODE && !strcmp(scalar(qk), key))
            return fail_key(cx, kn, key, "duplicate key");
    }
    return 0;
}

/* ---- layers ---- */

enum { T_MAMBA = 1 << BM_LAYER_MAMBA, T_ATTN = 1 << BM_LAYER_ATTENTION, T_MLP = 1 << BM_LAYER_MLP,
       T_BMOJO = 1 << BM_LAYER_BMOJO };
enum { K_TYPE, K_INT, K_FLOAT, K_BOOL, K_TAPS };

/* Every layer key: which layer types accept it, its value kind and where it goes. */
static const struct {
    const char *name;
    int types, kind;
    size_t off;
} layer_keys[] = {
    {"type", T_MAMBA | T_ATTN | T_MLP | T_BMOJO, K_TYPE, 0},
    {"d_state", T_MAMBA | T_BMOJO, K_INT, offsetof(bm_layer_cfg, mamba.d_state)},
    {"d_conv", T_MAMBA | T_BMOJO, K_INT, offsetof(bm_layer_cfg, mamba.d_conv)},
    {"expand", T_MAMBA | T_BMOJO, K_INT, offsetof(bm_layer_cfg, mamba.expand)},
    {"dt_rank", T_MAMBA | T_BMOJO, K_INT, offsetof(bm_layer_cfg, mamba.dt_rank)},
    {"dt_bc_norm", T_MAMBA | T_BMOJO, K_BOOL, offsetof(bm_layer_cfg, mamba.dt_bc_norm)},
    {"conv_bias", T_MAMBA | T_BMOJO, K_BOOL, offsetof(bm_layer_cfg, mamba.conv_bias)},
    {"proj_bias", T_MAMBA | T_BMOJO, K_BOOL, offsetof(bm_layer_cfg, mamba.proj_bias)},
    {"heads", T_ATTN | T_BMOJO, K_INT, offsetof(bm_layer_cfg, attn.heads)},
    {"kv_heads", T_ATTN | T_BMOJO, K_INT, offsetof(bm_layer_cfg, attn.kv_heads)},
    {"head_dim", T_ATTN | T_BMOJO, K_INT, offsetof(bm_layer_cfg, attn.head_dim)},
    {"window", T_ATTN | T_BMOJO, K_INT, offsetof(bm_layer_cfg, attn.window)},
    {"rope_theta", T_ATTN | T_BMOJO, K_FLOAT, offsetof(bm_layer_cfg, attn.rope_theta)},
    {"intermediate", T_MLP, K_INT, offsetof(bm_layer_cfg, intermediate)},
    {"fading_tokens", T_BMOJO, K_INT, offsetof(bm_layer_cfg, fading_tokens)},
    {"eidetic_tokens", T_BMOJO, K_INT, offsetof(bm_layer_cfg, eidetic_tokens)},
    {"predictor", T_BMOJO, K_TAPS, 0},
};
#define N_LAYER_KEYS ((int)(sizeof layer_keys / sizeof layer_keys[0]))

static int key_index(const char *key)
{
    for (int k = 0; k < N_LAYER_KEYS; k++)
        if (!strcmp(layer_keys[k].name, key))
            return k;
    return -1;
}

/* Keys a layer type cannot do without. */
static const char *const required_keys[][4] = {
    [BM_LAYER_MAMBA] = {NULL},
    [BM_LAYER_ATTENTION] = {"heads", NULL},
    [BM_LAYER_MLP] = {"intermediate", NULL},
    [BM_LAYER_BMOJO] = {"window", "heads", "fading_tokens", "eidetic_tokens"},
};

static int parse_taps(const ctx_t *cx, yaml_node_t *n, bm_layer_cfg *l)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail_key(cx, n, "predictor", "expected a list of numbers (the taps c_1..c_k)");
    long k = n->data.sequence.items.top - n->data.sequence.items.start;
    if (k < 1 || k > BM_MAX_TAPS) {
        char msg[120];
        snprintf(msg, sizeof msg, "%ld taps, expected 1 to %d", k, BM_MAX_TAPS);
        return fail_key(cx, n, "predictor", msg);
    }
    for (long i = 0; i < k; i++) {
        yaml_node_t *it = yaml_document_get_node(cx->doc, n->data.sequence.items.start[i]);
        if (!it)
            return fail_key(cx, n, "predictor", "bad list item");
        int st = get_float(cx, it, "predictor", &l->taps[i]);
        if (st)
            return st;
    }
    l->n_taps = (int)k;
    return 0;
}

static int parse_layer(ctx_t *cx, yaml_node_t *n, int i, int d_model, bm_layer_cfg *l)
{
    snprintf(cx->where, sizeof cx->where, "layers[%d]: ", i);
    if (n->type != YAML_MAPPING_NODE)
        return bm_fail(BMOJO_ECONFIG, "%s:%d: %sexpected a mapping with a type key", cx->path, line_of(n), cx->where);

    /* The type first: it decides which keys are allowed and the defaults. */
    yaml_node_t *type_node = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *key = NULL;
        yaml_node_t *kn = NULL, *vn = NULL;
        int st = pair_key(cx, p, &key, &kn, &vn);
        if (st)
            return st;
        if (!strcmp(key, "type") && !type_node)
            type_node = vn;
    }
    if (!type_node)
        return bm_fail(BMOJO_ECONFIG, "%s:%d: %smissing key type (mamba, attention, mlp or bmojo)", cx->path,
                       line_of(n), cx->where);
    if (type_node->type != YAML_SCALAR_NODE)
        return fail_key(cx, type_node, "type", "expected mamba, attention, mlp or bmojo");
    const char *ts = scalar(type_node);
    if (!strcmp(ts, "mamba"))
        l->type = BM_LAYER_MAMBA;
    else if (!strcmp(ts, "attention"))
        l->type = BM_LAYER_ATTENTION;
    else if (!strcmp(ts, "mlp"))
        l->type = BM_LAYER_MLP;
    else if (!strcmp(ts, "bmojo"))
        l->type = BM_LAYER_BMOJO;
    else {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown layer type \"%.60s\" (expected mamba, attention, mlp or bmojo)", ts);
        return fail_key(cx, type_node, "type", msg);
    }
    snprintf(cx->where, sizeof cx->where, "layers[%d] (%s): ", i, bm_layer_type_name(l->type));

    bm_config_mamba_defaults(&l->mamba, d_model);
    l->n_taps = 4;
    for (int k = 0; k < 4; k++)
        l->taps[k] = 0.25f;

    bool seen[N_LAYER_KEYS] = {false};
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *key = NULL;
        yaml_node_t *kn = NULL, *vn = NULL;
        int st = pair_key(cx, p, &key, &kn, &vn);
        if (!st)
            st = check_duplicate(cx, n, p, key, kn);
        if (st)
            return st;
        int k = key_index(key);
        if (k < 0)
            return fail_key(cx, kn, key, "unknown key");
        if (!(layer_keys[k].types & (1 << l->type))) {
            char msg[200];
            snprintf(msg, sizeof msg, "key is not valid for a layer of type %s", bm_layer_type_name(l->type));
            return fail_key(cx, kn, key, msg);
        }
        if (layer_keys[k].kind == K_TYPE)
            continue;
        if (is_null(vn))
            continue; /* absent: the default applies */
        seen[k] = true;
        void *dst = (char *)l + layer_keys[k].off;
        switch (layer_keys[k].kind) {
        case K_INT: st = get_int(cx, vn, key, (int *)dst); break;
        case K_FLOAT: st = get_float(cx, vn, key, (float *)dst); break;
        case K_BOOL: st = get_bool(cx, vn, key, (bool *)dst); break;
        case K_TAPS: st = parse_taps(cx, vn, l); break;
        }
        if (st)
            return st;
    }
    for (int r = 0; r < 4 && required_keys[l->type][r]; r++)
        if (!seen[key_index(required_keys[l->type][r])])
            return bm_fail(BMOJO_ECONFIG, "%s:%d: %smissing key %s", cx->path, line_of(n), cx->where,
                           required_keys[l->type][r]);

    if (l->type == BM_LAYER_ATTENTION || l->type == BM_LAYER_BMOJO) {
        bm_attn_cfg *a = &l->attn;
        if (!seen[key_index("kv_heads")])
            a->kv_heads = a->heads;
        if (!seen[key_index("head_dim")]) {
            if (a->heads < 1 || d_model % a->heads != 0)
                return bm_fail(BMOJO_ECONFIG,
                               "%s:%d: %shead_dim is absent and d_model (%d) is not a multiple of heads (%d)",
                               cx->path, line_of(n), cx->where, d_model, a->heads);
            a->head_dim = d_model / a->heads;
        }
    }
    return 0;
}

/* ---- the document ---- */

/* A name for a config without `name:`: the file's stem, or its folder for config.yaml. */
static void default_name(const char *path, char *name, size_t n)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strcspn(base, ".");
    if (len == 6 && !strncmp(base, "config", 6) && base != path) {
        /* the folder name: between the previous slash and this one */
        const char *end = base - 1, *start = end;
        while (start > path && start[-1] != '/')
            start--;
        if (end > start) {
            snprintf(name, n, "%.*s", (int)(end - start), start);
            return;
        }
    }
    snprintf(name, n, "%.*s", (int)len, base);
}

static int parse_document(ctx_t *cx, yaml_node_t *root, bm_config *out)
{
    cx->where[0] = 0;
    if (root->type != YAML_MAPPING_NODE)
        return bm_fail(BMOJO_ECONFIG, "%s:%d: the top level must be a mapping (name, vocab_size, d_model, layers, ...)",
                       cx->path, line_of(root));
    out->norm_eps = 1e-5f;
    out->tie_embeddings = true;
    bool have_vocab = false, have_d = false, have_name = false;
    yaml_node_t *layers = NULL;
    /* Scalars first: the layer defaults depend on d_model wherever it appears. */
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        const char *key = NULL;
        yaml_node_t *kn = NULL, *vn = NULL;
        int st = pair_key(cx, p, &key, &kn, &vn);
        if (!st)
            st = check_duplicate(cx, root, p, key, kn);
        if (st)
            return st;
        if (!strcmp(key, "name")) {
            if (vn->type != YAML_SCALAR_NODE)
                return fail_key(cx, vn, key, "expected a string");
            if (strlen(scalar(vn)) >= sizeof out->name)
                return fail_key(cx, vn, key, "longer than 127 bytes");
            snprintf(out->name, sizeof out->name, "%s", scalar(vn));
            have_name = true;
        } else if (!strcmp(key, "vocab_size")) {
            st = get_int(cx, vn, key, &out->vocab_size);
            have_vocab = true;
        } else if (!strcmp(key, "d_model")) {
            st = get_int(cx, vn, key, &out->d_model);
            have_d = true;
        } else if (!strcmp(key, "norm_eps")) {
            if (!is_null(vn))
                st = get_float(cx, vn, key, &out->norm_eps);
        } else if (!strcmp(key, "tie_embeddings")) {
            if (!is_null(vn))
                st = get_bool(cx, vn, key, &out->tie_embeddings);
        } else if (!strcmp(key, "layers")) {
            layers = vn;
        } else {
            return fail_key(cx, kn, key, "unknown key");
        }
        if (st)
            return st;
    }
    if (!have_vocab)
        return bm_fail(BMOJO_ECONFIG, "%s: missing key vocab_size", cx->path);
    if (!have_d)
        return bm_fail(BMOJO_ECONFIG, "%s: missing key d_model", cx->path);
    if (out->d_model < 1 || out->d_model > BM_MAX_D_MODEL)
        return bm_fail(BMOJO_ECONFIG, "%s: d_model (%d) must be in [1, %d]", cx->path, out->d_model, BM_MAX_D_MODEL);
    if (!layers)
        return bm_fail(BMOJO_ECONFIG, "%s: missing key layers (the list of sublayers)", cx->path);
    if (layers->type != YAML_SEQUENCE_NODE)
        return fail_key(cx, layers, "layers", "expected a list of sublayers");
    long n = layers->data.sequence.items.top - layers->data.sequence.items.start;
    if (n < 1)
        return fail_key(cx, layers, "layers", "a model needs at least one layer");
    if (n > BM_MAX_LAYERS) {
        char msg[100];
        snprintf(msg, sizeof msg, "%ld layers, at most %d", n, BM_MAX_LAYERS);
        return fail_key(cx, layers, "layers", msg);
    }
    out->layers = calloc((size_t)n, sizeof *out->layers);
    if (!out->layers)
        return bm_fail(BMOJO_ENOMEM, "%s: out of memory for %ld layers", cx->path, n);
    out->n_layers = (int)n;
    for (long i = 0; i < n; i++) {
        yaml_node_t *ln = yaml_document_get_node(cx->doc, layers->data.sequence.items.start[i]);
        if (!ln)
            return bm_fail(BMOJO_ECONFIG, "%s: layers[%ld]: bad node", cx->path, i);
        int st = parse_layer(cx, ln, (int)i, out->d_model, &out->layers[i]);
        if (st)
            return st;
    }
    if (!have_name)
        default_name(cx->path, out->name, sizeof out->name);
    return 0;
}

static int syntax_error(const char *path, const yaml_parser_t *parser)
{
    return bm_fail(BMOJO_ECONFIG, "%s:%d:%d: YAML syntax error: %s%s%s", path, (int)parser->problem_mark.line + 1,
                   (int)parser->problem_mark.column + 1, parser->problem ? parser->problem : "unknown problem",
                   parser->context ? " " : "", parser->context ? parser->context : "");
}

/* libyaml's document loader takes time quadratic in the nesting depth (100k levels: seconds to
 * minutes), so the depth is checked first with the event parser, which is linear and keeps no
 * tree. Syntax errors are reported here too, with the loader's message format. */
static int check_depth(const char *path, const char *text, size_t len)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return bm_fail(BMOJO_ENOMEM, "%s: cannot initialize the YAML parser", path);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int st = 0, depth = 0, done = 0;
    while (!st && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            st = syntax_error(path, &parser);
            break;
        }
        if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
            if (++depth > YAML_MAX_DEPTH)
                st = bm_fail(BMOJO_ECONFIG, "%s:%d: nesting deeper than %d levels (the limit for a config.yaml)", path,
                             (int)ev.start_mark.line + 1, YAML_MAX_DEPTH);
        } else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (ev.type == YAML_STREAM_END_EVENT) {
            done = 1;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return st;
}

int bm_config_load_yaml(const char *path, bm_config *out)
{
    if (!path || !out)
        return bm_fail(BMOJO_EINVAL, "bm_config_load_yaml: NULL argument");
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    int st = bm_read_file(path, YAML_MAX_FILE, &text, &len);
    if (st == BMOJO_EFORMAT)
        return bm_fail(BMOJO_ECONFIG, "%s: larger than %u bytes, not a config.yaml", path, YAML_MAX_FILE);
    if (st)
        return st;
    st = check_depth(path, text, len);
    if (st) {
        free(text);
        return st;
    }

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        free(text);
        return bm_fail(BMOJO_ENOMEM, "%s: cannot initialize the YAML parser", path);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_document_t doc;
    if (!yaml_parser_load(&parser, &doc)) {
        st = syntax_error(path, &parser);
        yaml_parser_delete(&parser);
        free(text);
        return st;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        st = bm_fail(BMOJO_ECONFIG, "%s: empty file (expected name, vocab_size, d_model, layers)", path);
    } else {
        ctx_t cx = {.path = path, .doc = &doc};
        st = parse_document(&cx, root, out);
        if (!st) {
            /* A second document is a mistake, not something to ignore. */
            yaml_document_t doc2;
            if (!yaml_parser_load(&parser, &doc2)) {
                st = bm_fail(BMOJO_ECONFIG, "%s:%d: YAML syntax error: %s", path, (int)parser.problem_mark.line + 1,
                             parser.problem ? parser.problem : "unknown problem");
            } else {
                if (yaml_document_get_root_node(&doc2))
                    st = bm_fail(BMOJO_ECONFIG, "%s: more than one YAML document", path);
                yaml_document_delete(&doc2);
            }
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    free(text);
    if (!st) {
        out->source = BM_SOURCE_YAML;
        bm_config_native_names(out);
        st = bm_config_validate(out, path, NULL);
    }
    if (st)
        bm_config_free(out);
    return st;
}

/* ---- writing ---- */

/* Appends to a growing string; 0 or BMOJO_ENOMEM. */
typedef struct {
    char *s;
    size_t len, cap;
} out_t;

static int put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(out_t *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->s ? o->s + o->len : NULL, o->s ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return bm_fail(BMOJO_EINVAL, "formatting config.yaml");
        if (o->s && o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return 0;
        }
        size_t cap = (o->cap ? 2 * o->cap : 1024) + (size_t)n;
        char *p = realloc(o->s, cap);
        if (!p) return bm_fail(BMOJO_ENOMEM, "out of host memory");
        o->s = p;
        o->cap = cap;
    }
}

int bm_config_write_yaml(const bm_config *c, char **text)
{
    out_t o = {0};
    *text = NULL;
    int st = put(&o, "name: %s\nvocab_size: %d\nd_model: %d\nnorm_eps: %.9g\ntie_embeddings: %s\nlayers:\n",
                 c->name[0] ? c->name : "bmojo", c->vocab_size, c->d_model, (double)c->norm_eps,
                 c->tie_embeddings ? "true" : "false");
    for (int i = 0; st == 0 && i < c->n_layers; i++) {
        const bm_layer_cfg *l = &c->layers[i];
        st = put(&o, "  - {type: %s", bm_layer_type_name(l->type));
        for (int k = 1; st == 0 && k < N_LAYER_KEYS; k++) {
            if (!(layer_keys[k].types & (1 << l->type))) continue;
            const char *key = layer_keys[k].name;
            const void *src = (const char *)l + layer_keys[k].off;
            switch (layer_keys[k].kind) {
            case K_INT: {
                int v = *(const int *)src;
                /* attention's window 0 (full) is written by leaving the key out */
                if (!(l->type == BM_LAYER_ATTENTION && !strcmp(key, "window") && v == 0))
                    st = put(&o, ", %s: %d", key, v);
                break;
            }
            case K_FLOAT:
                /* a bmojo layer without RoPE (the contract's B'MOJO) leaves out rope_theta, an
                 * extension key that only this runtime reads on that kind */
                if (!(l->type == BM_LAYER_BMOJO && !strcmp(key, "rope_theta") && *(const float *)src == 0.0f))
                    st = put(&o, ", %s: %.9g", key, (double)*(const float *)src);
                break;
            case K_BOOL: st = put(&o, ", %s: %s", key, *(const bool *)src ? "true" : "false"); break;
            case K_TAPS:
                st = put(&o, ", %s: [", key);
                for (int t = 0; st == 0 && t < l->n_taps; t++) st = put(&o, "%s%.9g", t ? ", " : "", (double)l->taps[t]);
                if (!st) st = put(&o, "]");
                break;
            }
        }
        if (!st) st = put(&o, "}\n");
    }
    if (st) {
        free(o.s);
        return st;
    }
    *text = o.s;
    return 0;
}
