/* tokenizer.c — bmojo_tokenizer_*: a Hugging Face tokenizer.json with a BPE model, loaded and run
 * as the `tokenizers` library runs it (docs/architecture.md, "Tokenizer"):
 *   added tokens: the input is split on their exact contents first (longest match, leftmost);
 *   normalizer:   null, NFC, Prepend, Replace (a string pattern), or a Sequence of those;
 *   pre-tokenizer: null, ByteLevel (the GPT-2 split, bytes mapped to characters), Metaspace;
 *   model:        BPE (merges as "a b" strings or [a, b] pairs; unk, fuse_unk, byte_fallback,
 *                 ignore_merges);
 *   post-processor (add_special): ByteLevel (no ids), TemplateProcessing (its "single" template);
 *   decoder:      ByteLevel, Metaspace, or a Sequence of Replace, ByteFallback, Fuse, and after a
 *                 Fuse, Strip or Metaspace.
 * Anything else is refused with an error naming the component. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmojo.h"
#include "error.h"
#include "file_read.h"
#include "json.h"
#include "tokenizer/bpe.h"
#include "tokenizer/parse.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

enum { NORM_NFC, NORM_PREPEND, NORM_REPLACE };
enum { PRE_NONE, PRE_BYTELEVEL, PRE_METASPACE };
enum { DEC_NONE, DEC_BYTELEVEL, DEC_SEQUENCE, DEC_METASPACE };
enum { DSTEP_REPLACE, DSTEP_BYTEFALLBACK, DSTEP_FUSE, DSTEP_STRIP, DSTEP_METASPACE };

#define MAX_STEPS 8

typedef struct {
    int kind;
    char *a, *b; /* Prepend: a; Replace: a -> b */
} norm_step;

typedef struct {
    int kind;
    char *a, *b;        /* Replace: a -> b; Strip: a = the character */
    int start, stop;    /* Strip */
} dec_step;

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    int special;
} added_token;

struct bmojo_tokenizer {
    bm_bpe bpe;
    int32_t vocab_size;    /* 1 + the largest id */
    int32_t unk;           /* -1: none */
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t byte_ids[256]; /* <0xXX> tokens (byte_fallback) */
    norm_step norm[MAX_STEPS];
    int n_norm;
    int pre;
    int pre_prefix_space;  /* ByteLevel add_prefix_space */
    char *meta_repl;       /* Metaspace replacement (UTF-8) */
    int meta_prepend;      /* 0 never, 1 first, 2 always */
    int meta_split;
    int dec;
    int dec_meta_prepend;  /* the Metaspace decoder prepends (its first token loses every replacement) */
    dec_step dsteps[MAX_STEPS];
    int n_dsteps;
    added_token *added;
    int n_added;
    int32_t *tmpl_pre, *tmpl_post; /* TemplateProcessing single: ids before / after $A */
    int n_tmpl_pre, n_tmpl_post;
};

/* ---- growing buffers ---- */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2 + 64;
        char *g = realloc(b->p, cap);
        if (!g) return -1;
        b->p = g, b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

typedef struct {
    int32_t *p;
    size_t n, cap;
} ibuf;

static int ib_add(ibuf *b, int32_t v)
{
    if (b->n + 1 > b->cap) {
        size_t cap = b->cap * 2 + 64;
        int32_t *g = realloc(b->p, cap * sizeof *g);
        if (!g) return -1;
        b->p = g, b->cap = cap;
    }
    b->p[b->n++] = v;
    return 0;
}

/* ---- loading ---- */

static const char *jstr(const bm_json *o, const char *key)
{
    const bm_json *v = bm_json_get(o, key);
    return v && v->type == BM_JSON_STRING ? v->string : NULL;
}

static int jbool(const bm_json *o, const char *key, int def)
{
    const bm_json *v = bm_json_get(o, key);
    return v && v->type == BM_JSON_BOOL ? v->boolean : def;
}

static char *dup(const char *s) { return s ? strdup(s) : NULL; }

static int load_norm(bmojo_tokenizer *t, const bm_json *n)
{
    if (!n || n->type == BM_JSON_NULL) return 0;
    const char *type = jstr(n, "type");
    if (!type) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: a normalizer without a type");
    if (!strcmp(type, "Sequence")) {
        const bm_json *list = bm_json_get(n, "normalizers");
        if (!list || list->type != BM_JSON_ARRAY) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: Sequence normalizer without a list");
        for (size_t i = 0; i < list->count; i++) {
            int st = load_norm(t, &list->items[i]);
            if (st) return st;
        }
        return 0;
    }
    if (t->n_norm == MAX_STEPS) return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: more than %d normalizers", MAX_STEPS);
    norm_step *s = &t->norm[t->n_norm];
    if (!strcmp(type, "NFC")) s->kind = NORM_NFC;
    else if (!strcmp(type, "Prepend") && jstr(n, "prepend")) s->kind = NORM_PREPEND, s->a = dup(jstr(n, "prepend"));
    else if (!strcmp(type, "Replace")) {
        const bm_json *pat = bm_json_get(n, "pattern");
        const char *from = pat ? jstr(pat, "String") : NULL, *to = jstr(n, "content");
        if (!from || !to || !*from)
            return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: Replace normalizer with a regex pattern (only a string pattern is supported)");
        s->kind = NORM_REPLACE, s->a = dup(from), s->b = dup(to);
    } else
        return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: normalizer %s is not supported (NFC, Prepend, Replace, Sequence are)", type);
    t->n_norm++;
    return 0;
}

static int load_pre(bmojo_tokenizer *t, const bm_json *p)
{
    if (!p || p->type == BM_JSON_NULL) return 0;
    const char *type = jstr(p, "type");
    if (type && !strcmp(type, "ByteLevel")) {
        if (!jbool(p, "use_regex", 1))
            return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: ByteLevel pre-tokenizer without use_regex is not supported");
        t->pre = PRE_BYTELEVEL;
        t->pre_prefix_space = jbool(p, "add_prefix_space", 0);
        return 0;
    }
    if (type && !strcmp(type, "Metaspace")) {
        const char *r = jstr(p, "replacement"), *scheme = jstr(p, "prepend_scheme");
        t->pre = PRE_METASPACE;
        t->meta_repl = dup(r ? r : "\xe2\x96\x81");
        t->meta_prepend = !scheme ? (jbool(p, "add_prefix_space", 1) ? 2 : 0)
                          : !strcmp(scheme, "always") ? 2 : !strcmp(scheme, "first") ? 1 : 0;
        t->meta_split = jbool(p, "split", 1);
        return 0;
    }
    return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: pre-tokenizer %s is not supported (ByteLevel, Metaspace are)",
                   type ? type : "(no type)");
}

static int load_dec(bmojo_tokenizer *t, const bm_json *d, int nested)
{
    if (!d || d->type == BM_JSON_NULL) return 0;
    const char *type = jstr(d, "type");
    if (!type) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: a decoder without a type");
    if (!nested && !strcmp(type, "ByteLevel")) return t->dec = DEC_BYTELEVEL, 0;
    if (!nested && !strcmp(type, "Metaspace")) {
        const char *scheme = jstr(d, "prepend_scheme");
        t->dec_meta_prepend = scheme ? strcmp(scheme, "never") != 0 : jbool(d, "add_prefix_space", 1);
        return t->dec = DEC_METASPACE, 0;
    }
    if (!nested && !strcmp(type, "Sequence")) {
        const bm_json *list = bm_json_get(d, "decoders");
        if (!list || list->type != BM_JSON_ARRAY) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: Sequence decoder without a list");
        t->dec = DEC_SEQUENCE;
        for (size_t i = 0; i < list->count; i++) {
            int st = load_dec(t, &list->items[i], 1);
            if (st) return st;
        }
        return 0;
    }
    if (nested && t->n_dsteps < MAX_STEPS) {
        dec_step *s = &t->dsteps[t->n_dsteps];
        if (!strcmp(type, "Replace")) {
            const bm_json *pat = bm_json_get(d, "pattern");
            const char *from = pat ? jstr(pat, "String") : NULL, *to = jstr(d, "content");
            if (!from || !to || !*from)
                return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: Replace decoder with a regex pattern is not supported");
            s->kind = DSTEP_REPLACE, s->a = dup(from), s->b = dup(to);
        } else if (!strcmp(type, "ByteFallback")) s->kind = DSTEP_BYTEFALLBACK;
        else if (!strcmp(type, "Fuse")) s->kind = DSTEP_FUSE;
        else if (!strcmp(type, "Strip") || !strcmp(type, "Metaspace")) {
            /* after a Fuse there is one token: both act on the whole text (without one, per token: not supported) */
            int fused = 0;
            for (int k = 0; k < t->n_dsteps; k++) fused |= t->dsteps[k].kind == DSTEP_FUSE;
            if (!fused)
                return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: a %s decoder without a Fuse before it is not supported", type);
            if (type[0] == 'M') {
                const char *r = jstr(d, "replacement"), *scheme = jstr(d, "prepend_scheme");
                s->kind = DSTEP_METASPACE, s->a = dup(r ? r : "\xe2\x96\x81");
                s->start = scheme ? strcmp(scheme, "never") != 0 : jbool(d, "add_prefix_space", 1); /* prepends */
                t->n_dsteps++;
                return 0;
            }
            const char *c = jstr(d, "content");
            const bm_json *a = bm_json_get(d, "start"), *b = bm_json_get(d, "stop");
            s->kind = DSTEP_STRIP, s->a = dup(c ? c : " ");
            s->start = a && a->is_integer ? (int)a->integer : 0, s->stop = b && b->is_integer ? (int)b->integer : 0;
        } else
            return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: decoder %s is not supported in a Sequence (Replace, ByteFallback, Fuse, Strip are)", type);
        t->n_dsteps++;
        return 0;
    }
    return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: decoder %s is not supported (ByteLevel, Metaspace, Sequence are)", type);
}

static int32_t token_id(const bmojo_tokenizer *t, const char *s)
{
    for (int i = 0; i < t->n_added; i++)
        if (!strcmp(t->added[i].content, s)) return t->added[i].id;
    return bm_bpe_find(&t->bpe, s, strlen(s));
}

static int load_post(bmojo_tokenizer *t, const bm_json *p)
{
    if (!p || p->type == BM_JSON_NULL) return 0;
    const char *type = jstr(p, "type");
    if (type && !strcmp(type, "ByteLevel")) return 0; /* offsets only */
    if (!type || strcmp(type, "TemplateProcessing"))
        return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: post-processor %s is not supported (ByteLevel, TemplateProcessing are)",
                       type ? type : "(no type)");
    const bm_json *single = bm_json_get(p, "single"), *specials = bm_json_get(p, "special_tokens");
    if (!single || single->type != BM_JSON_ARRAY) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: TemplateProcessing without a single template");
    t->tmpl_pre = calloc(single->count + 1, sizeof *t->tmpl_pre);
    t->tmpl_post = calloc(single->count + 1, sizeof *t->tmpl_post);
    if (!t->tmpl_pre || !t->tmpl_post) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    int seen_seq = 0;
    for (size_t i = 0; i < single->count; i++) {
        const bm_json *it = &single->items[i], *sp = bm_json_get(it, "SpecialToken");
        if (bm_json_get(it, "Sequence")) {
            seen_seq = 1;
            continue;
        }
        const char *name = sp ? jstr(sp, "id") : NULL;
        if (!name) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: a template item that is neither SpecialToken nor Sequence");
        const bm_json *def = specials ? bm_json_get(specials, name) : NULL, *ids = def ? bm_json_get(def, "ids") : NULL;
        int32_t id = ids && ids->type == BM_JSON_ARRAY && ids->count == 1 && ids->items[0].is_integer ? (int32_t)ids->items[0].integer
                                                                                                  : token_id(t, name);
        if (id < 0) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: the template's special token %s is not in the vocabulary", name);
        if (seen_seq) t->tmpl_post[t->n_tmpl_post++] = id;
        else t->tmpl_pre[t->n_tmpl_pre++] = id;
    }
    return 0;
}

static int load_model(bmojo_tokenizer *t, const bm_json *m)
{
    const char *type = m ? jstr(m, "type") : NULL;
    if (m && !type && bm_json_get(m, "merges")) type = "BPE"; /* older files leave the type out */
    if (!type || strcmp(type, "BPE"))
        return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: model %s is not supported (BPE is)", type ? type : "(none)");
    if (jstr(m, "continuing_subword_prefix") || jstr(m, "end_of_word_suffix"))
        return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: BPE with continuing_subword_prefix or end_of_word_suffix is not supported");
    const bm_json *vocab = bm_json_get(m, "vocab"), *merges = bm_json_get(m, "merges");
    if (!vocab || vocab->type != BM_JSON_OBJECT) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: the BPE model has no vocab object");
    if (!merges || merges->type != BM_JSON_ARRAY) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: the BPE model has no merges list");
    for (size_t i = 0; i < vocab->count; i++) {
        const bm_json *v = &vocab->items[i];
        if (!v->is_integer || v->integer < 0 || v->integer >= (1 << 30))
            return bm_fail(BMOJO_EFORMAT, "tokenizer.json: vocab entry \"%s\" has no valid id", vocab->keys[i]);
        int st = bm_bpe_add_token(&t->bpe, vocab->keys[i], strlen(vocab->keys[i]), (int32_t)v->integer);
        if (st == -1) return bm_fail(BMOJO_ENOMEM, "out of host memory");
        if (st) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: vocab entry \"%s\" (id %lld) repeats a token or an id", vocab->keys[i], (long long)v->integer);
        if ((int32_t)v->integer + 1 > t->vocab_size) t->vocab_size = (int32_t)v->integer + 1;
    }
    for (size_t i = 0; i < merges->count; i++) {
        const bm_json *e = &merges->items[i];
        const char *l = NULL, *r = NULL;
        size_t ln = 0, rn = 0;
        if (e->type == BM_JSON_STRING) {
            const char *sp = strchr(e->string, ' ');
            if (sp && sp != e->string && sp[1]) l = e->string, ln = (size_t)(sp - e->string), r = sp + 1, rn = strlen(r);
        } else if (e->type == BM_JSON_ARRAY && e->count == 2 && e->items[0].type == BM_JSON_STRING && e->items[1].type == BM_JSON_STRING)
            l = e->items[0].string, ln = strlen(l), r = e->items[1].string, rn = strlen(r);
        if (!l) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", i);
        int st = bm_bpe_add_merge(&t->bpe, l, ln, r, rn);
        if (st == -1) return bm_fail(BMOJO_ENOMEM, "out of host memory");
        if (st == -2)
            return bm_fail(BMOJO_EFORMAT, "tokenizer.json: merge %zu (\"%.*s\" + \"%.*s\") names a token that is not in the vocabulary", i,
                           (int)ln, l, (int)rn, r);
    }
    const char *unk = jstr(m, "unk_token");
    t->unk = unk ? bm_bpe_find(&t->bpe, unk, strlen(unk)) : -1;
    if (unk && t->unk < 0) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: unk_token \"%s\" is not in the vocabulary", unk);
    t->fuse_unk = jbool(m, "fuse_unk", 0);
    t->byte_fallback = jbool(m, "byte_fallback", 0);
    t->ignore_merges = jbool(m, "ignore_merges", 0);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_ids[b] = bm_bpe_find(&t->bpe, name, 6);
        if (t->byte_fallback && t->byte_ids[b] < 0)
            return bm_fail(BMOJO_EFORMAT, "tokenizer.json: byte_fallback is on but the vocabulary lacks %s", name);
    }
    return 0;
}

static int load_added(bmojo_tokenizer *t, const bm_json *a)
{
    if (!a || a->type == BM_JSON_NULL) return 0;
    if (a->type != BM_JSON_ARRAY) return bm_fail(BMOJO_EFORMAT, "tokenizer.json: added_tokens is not a list");
    t->added = calloc(a->count + 1, sizeof *t->added);
    if (!t->added) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    for (size_t i = 0; i < a->count; i++) {
        const bm_json *e = &a->items[i], *id = bm_json_get(e, "id");
        const char *c = jstr(e, "content");
        if (!c || !*c || !id || !id->is_integer || id->integer < 0 || id->integer >= (1 << 30))
            return bm_fail(BMOJO_EFORMAT, "tokenizer.json: added token %zu has no content or no valid id", i);
        if (jbool(e, "single_word", 0) || jbool(e, "lstrip", 0) || jbool(e, "rstrip", 0))
            return bm_fail(BMOJO_EUNSUPPORTED, "tokenizer.json: added token \"%s\" uses single_word, lstrip or rstrip", c);
        added_token *x = &t->added[t->n_added++];
        x->content = dup(c), x->len = strlen(c), x->id = (int32_t)id->integer, x->special = jbool(e, "special", 0);
        if (!x->content) return bm_fail(BMOJO_ENOMEM, "out of host memory");
        if (x->id + 1 > t->vocab_size) t->vocab_size = x->id + 1;
    }
    return 0;
}

int bm_tokenizer_parse(const char *text, size_t len, bmojo_tokenizer **out)
{
    *out = NULL;
    bm_json *j = NULL;
    char err[256];
    int st = bm_json_parse(text, len, &j, err, sizeof err);
    if (st) return bm_fail(BMOJO_EFORMAT, "%s", err);
    bmojo_tokenizer *t = calloc(1, sizeof *t);
    if (!t) st = bm_fail(BMOJO_ENOMEM, "out of host memory");
    if (!st && j->type != BM_JSON_OBJECT) st = bm_fail(BMOJO_EFORMAT, "tokenizer.json: not a JSON object");
    if (!st) st = load_model(t, bm_json_get(j, "model"));
    if (!st) st = load_added(t, bm_json_get(j, "added_tokens"));
    if (!st) st = load_norm(t, bm_json_get(j, "normalizer"));
    if (!st) st = load_pre(t, bm_json_get(j, "pre_tokenizer"));
    if (!st) st = load_dec(t, bm_json_get(j, "decoder"), 0);
    if (!st) st = load_post(t, bm_json_get(j, "post_processor"));
    bm_json_free(j);
    if (st) {
        bmojo_tokenizer_free(t);
        return st;
    }
    *out = t;
    return 0;
}

int bmojo_tokenizer_load(const char *path, bmojo_tokenizer **out)
{
    if (!path || !out) return bm_fail(BMOJO_EINVAL, "bmojo_tokenizer_load: NULL argument");
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int st = bm_read_file(path, 256u << 20, &text, &len);
    if (st) return st;
    st = bm_tokenizer_parse(text, len, out);
    free(text);
    return st ? bm_fail_context(st, "%s", path) : 0;
}

void bmojo_tokenizer_free(bmojo_tokenizer *t)
{
    if (!t) return;
    bm_bpe_free(&t->bpe);
    for (int i = 0; i < t->n_norm; i++) free(t->norm[i].a), free(t->norm[i].b);
    for (int i = 0; i < t->n_dsteps; i++) free(t->dsteps[i].a), free(t->dsteps[i].b);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->meta_repl);
    free(t->tmpl_pre);
    free(t->tmpl_post);
    free(t);
}

int32_t bmojo_tokenizer_vocab_size(const bmojo_tokenizer *t) { return t ? t->vocab_size : 0; }

int32_t bmojo_tokenizer_eos(const bmojo_tokenizer *t)
{
    static const char *const names[] = {"</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>"};
    for (size_t k = 0; t && k < sizeof names / sizeof names[0]; k++)
        for (int a = 0; a < t->n_added; a++)
            if (t->added[a].special && !strcmp(t->added[a].content, names[k])) return t->added[a].id;
    return -1;
}

/* ---- encoding ---- */

/* s with every occurrence of a replaced by b (a non-empty). */
static int replace_all(const char *s, size_t n, const char *a, const char *b, sbuf *out)
{
    const size_t an = strlen(a), bn = strlen(b);
    out->n = 0;
    int st = sb_add(out, "", 0);
    for (size_t i = 0; st == 0 && i < n;) {
        if (i + an <= n && !memcmp(s + i, a, an)) st = sb_add(out, b, bn), i += an;
        else st = sb_add(out, s + i, 1), i++;
    }
    return st;
}

static int normalize(const bmojo_tokenizer *t, const char *s, size_t n, sbuf *out)
{
    sbuf cur = {0}, tmp = {0};
    int st = sb_add(&cur, s, n);
    for (int k = 0; st == 0 && k < t->n_norm; k++) {
        const norm_step *ns = &t->norm[k];
        tmp.n = 0;
        if (ns->kind == NORM_NFC) {
            char *o;
            size_t on;
            if (bm_uni_nfc(cur.p, cur.n, &o, &on)) st = -1;
            else st = sb_add(&tmp, o, on), free(o);
        } else if (ns->kind == NORM_PREPEND) {
            st = cur.n ? sb_add(&tmp, ns->a, strlen(ns->a)) : 0; /* an empty string stays empty */
            if (!st) st = sb_add(&tmp, cur.p, cur.n);
        } else
            st = replace_all(cur.p, cur.n, ns->a, ns->b, &tmp);
        sbuf x = cur;
        cur = tmp, tmp = x;
    }
    free(tmp.p);
    if (st) {
        free(cur.p);
        return bm_fail(BMOJO_ENOMEM, "out of host memory");
    }
    *out = cur;
    return 0;
}

/* The BPE of one pre-token (UTF-8 bytes of the model's alphabet) appended to ids. */
static int encode_word(const bmojo_tokenizer *t, const char *w, size_t n, ibuf *ids)
{
    if (n == 0) return 0;
    if (t->ignore_merges) {
        const int32_t id = bm_bpe_find(&t->bpe, w, n);
        if (id >= 0) return ib_add(ids, id);
    }
    ibuf sym = {0};
    int st = 0, last_unk = 0;
    for (size_t i = 0; st == 0 && i < n;) {
        size_t k = i;
        bm_utf8_next((const unsigned char *)w, n, &k);
        const int32_t id = bm_bpe_find(&t->bpe, w + i, k - i);
        if (id >= 0) st = ib_add(&sym, id), last_unk = 0;
        else if (t->byte_fallback)
            for (size_t b = i; st == 0 && b < k; b++) st = ib_add(&sym, t->byte_ids[(unsigned char)w[b]]), last_unk = 0;
        else if (t->unk >= 0) {
            if (!(t->fuse_unk && last_unk)) st = ib_add(&sym, t->unk);
            last_unk = 1;
        } else
            st = -2;
        i = k;
    }
    if (st == -2) {
        free(sym.p);
        return bm_fail(BMOJO_EFORMAT, "tokenizer: a character of \"%.*s\" is not in the vocabulary and the model has no unk_token",
                       (int)(n < 40 ? n : 40), w);
    }
    if (!st && bm_bpe_merge_word(&t->bpe, sym.p, &sym.n)) st = -1;
    for (size_t i = 0; st == 0 && i < sym.n; i++) st = ib_add(ids, sym.p[i]);
    free(sym.p);
    return st ? bm_fail(BMOJO_ENOMEM, "out of host memory") : 0;
}

/* One segment between added tokens: normalize, pre-tokenize, BPE. first: the input's first segment. */
static int encode_segment(const bmojo_tokenizer *t, const char *s, size_t n, int first, ibuf *ids)
{
    sbuf norm = {0}, piece = {0};
    int st = normalize(t, s, n, &norm);
    if (st) return st;
    if (t->pre == PRE_BYTELEVEL) {
        const char *p = norm.p;
        size_t pn = norm.n;
        sbuf spaced = {0};
        if (t->pre_prefix_space && pn && p[0] != ' ') {
            if (sb_add(&spaced, " ", 1) || sb_add(&spaced, p, pn)) st = bm_fail(BMOJO_ENOMEM, "out of host memory");
            p = spaced.p, pn = spaced.n;
        }
        for (size_t i = 0; st == 0 && i < pn;) {
            const size_t len = bm_gpt2_piece(p, pn, i);
            piece.n = 0;
            for (size_t b = i; st == 0 && b < i + len; b++) {
                char c[2];
                st = sb_add(&piece, c, (size_t)bm_byte_char((unsigned char)p[b], c));
            }
            if (!st) st = encode_word(t, piece.p, piece.n, ids);
            i += len;
        }
        free(spaced.p);
    } else if (t->pre == PRE_METASPACE) {
        sbuf rep = {0};
        const size_t rl = strlen(t->meta_repl);
        /* prepended unless the text, its spaces replaced, already starts with the replacement */
        if (norm.n && (t->meta_prepend == 2 || (t->meta_prepend == 1 && first)) && norm.p[0] != ' ' &&
            !(norm.n >= rl && !memcmp(norm.p, t->meta_repl, rl)) && sb_add(&rep, t->meta_repl, rl))
            st = bm_fail(BMOJO_ENOMEM, "out of host memory");
        for (size_t i = 0; st == 0 && i < norm.n; i++)
            st = norm.p[i] == ' ' ? sb_add(&rep, t->meta_repl, rl) : sb_add(&rep, norm.p + i, 1);
        /* split before each replacement character (it starts the next word) */
        for (size_t i = 0; st == 0 && i < rep.n;) {
            size_t j = i + 1;
            while (t->meta_split && j < rep.n && !(j + rl <= rep.n && !memcmp(rep.p + j, t->meta_repl, rl))) j++;
            if (!t->meta_split) j = rep.n;
            st = encode_word(t, rep.p + i, j - i, ids);
            i = j;
        }
        free(rep.p);
    } else
        st = encode_word(t, norm.p, norm.n, ids);
    free(norm.p);
    free(piece.p);
    return st;
}

int bmojo_tokenizer_encode(const bmojo_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids_out,
                           size_t *n_out)
{
    if (!t || (!text && len) || !ids_out || !n_out) return bm_fail(BMOJO_EINVAL, "bmojo_tokenizer_encode: NULL argument");
    *ids_out = NULL, *n_out = 0;
    for (size_t i = 0; i < len;) {
        const size_t p = i;
        if (bm_utf8_next((const unsigned char *)text, len, &i) < 0)
            return bm_fail(BMOJO_EINVAL, "tokenizer: the text is not valid UTF-8 (byte %zu: 0x%02x)", p, (unsigned char)text[p]);
    }
    ibuf ids = {0};
    int st = 0;
    for (int k = 0; st == 0 && add_special && k < t->n_tmpl_pre; k++) st = ib_add(&ids, t->tmpl_pre[k]);
    size_t seg = 0;
    int first = 1;
    for (size_t i = 0; st == 0 && i <= len;) {
        /* the longest added token starting here */
        int best = -1;
        for (int a = 0; i < len && a < t->n_added; a++)
            if (t->added[a].len <= len - i && !memcmp(text + i, t->added[a].content, t->added[a].len) &&
                (best < 0 || t->added[a].len > t->added[best].len))
                best = a;
        if (best < 0 && i < len) {
            i++;
            continue;
        }
        if (i > seg) st = encode_segment(t, text + seg, i - seg, first, &ids), first = 0;
        if (best < 0) break;
        if (!st) st = ib_add(&ids, t->added[best].id), first = 0;
        i += t->added[best].len;
        seg = i;
    }
    for (int k = 0; st == 0 && add_special && k < t->n_tmpl_post; k++) st = ib_add(&ids, t->tmpl_post[k]);
    if (st) {
        free(ids.p);
        return st > 0 || st < -1 ? st : bm_fail(BMOJO_ENOMEM, "out of host memory");
    }
    if (!ids.p && !(ids.p = malloc(sizeof *ids.p))) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    *ids_out = ids.p, *n_out = ids.n;
    return 0;
}

/* ---- decoding ---- */

static const char *token_string(const bmojo_tokenizer *t, int32_t id, int *is_added)
{
    *is_added = 0;
    for (int a = 0; a < t->n_added; a++)
        if (t->added[a].id == id) return *is_added = 1, t->added[a].content;
    return id >= 0 && id < t->bpe.n_ids ? t->bpe.strings[id] : NULL;
}

static int byte_token(const char *s)
{
    unsigned v;
    char end;
    if (strlen(s) == 6 && !strncmp(s, "<0x", 3) && s[5] == '>' && sscanf(s + 3, "%2X%c", &v, &end) == 2 && end == '>') return (int)v;
    return -1;
}

int bmojo_tokenizer_decode(const bmojo_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len)
{
    if (!t || (!ids && n) || !text || !len) return bm_fail(BMOJO_EINVAL, "bmojo_tokenizer_decode: NULL argument");
    *text = NULL, *len = 0;
    /* the tokens, each as its own string (the decoders work token by token) */
    sbuf all = {0};
    size_t *start = malloc((n + 1) * sizeof *start);
    if (!start) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    int st = sb_add(&all, "", 0);
    for (size_t i = 0; st == 0 && i < n; i++) {
        int added;
        const char *s = token_string(t, ids[i], &added);
        if (!s) {
            free(start), free(all.p);
            return bm_fail(BMOJO_ERANGE, "tokenizer: id %d at position %zu is not in the vocabulary (size %d)", (int)ids[i], i,
                           (int)t->vocab_size);
        }
        start[i] = all.n;
        st = sb_add(&all, s, strlen(s));
    }
    start[n] = all.n;
    sbuf out = {0};
    if (!st) st = sb_add(&out, "", 0);
    if (!st && t->dec == DEC_BYTELEVEL) {
        sbuf bytes = {0};
        for (size_t i = 0; st == 0 && i < all.n;) {
            const size_t p = i;
            const int32_t c = bm_utf8_next((const unsigned char *)all.p, all.n, &i);
            const int b = c < 0 ? -1 : bm_char_byte((uint32_t)c);
            if (b >= 0) {
                const char ch = (char)b;
                st = sb_add(&bytes, &ch, 1);
            } else
                st = sb_add(&bytes, all.p + p, i - p);
        }
        char *lossy;
        size_t ln;
        if (!st && bm_utf8_lossy(bytes.p ? bytes.p : "", bytes.n, &lossy, &ln) == 0) st = sb_add(&out, lossy, ln), free(lossy);
        free(bytes.p);
    } else if (!st && t->dec == DEC_METASPACE) {
        /* as Hugging Face's: in the first token every replacement character is dropped (when a
         * prefix was prepended), in the others each becomes a space */
        for (size_t i = 0; st == 0 && i < n; i++) {
            sbuf r = {0};
            st = replace_all(all.p + start[i], start[i + 1] - start[i], "\xe2\x96\x81", i == 0 && t->dec_meta_prepend ? "" : " ", &r);
            if (!st) st = sb_add(&out, r.p ? r.p : "", r.n);
            free(r.p);
        }
    } else if (!st && t->dec == DEC_SEQUENCE) {
        /* token by token: Replace and ByteFallback, then Fuse (all one), then Strip */
        sbuf cur = {0}, pend = {0};
        for (size_t i = 0; st == 0 && i <= n; i++) {
            const char *s = i < n ? all.p + start[i] : "";
            size_t sn = i < n ? start[i + 1] - start[i] : 0;
            sbuf tok = {0};
            st = sb_add(&tok, s, sn);
            int bt = -1;
            for (int k = 0; st == 0 && i < n && k < t->n_dsteps; k++) {
                const dec_step *d = &t->dsteps[k];
                if (d->kind == DSTEP_REPLACE) {
                    sbuf r = {0};
                    st = replace_all(tok.p, tok.n, d->a, d->b, &r);
                    free(tok.p);
                    tok = r;
                } else if (d->kind == DSTEP_BYTEFALLBACK)
                    bt = byte_token(tok.p);
            }
            /* a run of byte tokens becomes its UTF-8 text, or one U+FFFD per byte when invalid */
            if (bt >= 0 && i < n) {
                const char c = (char)bt;
                st = sb_add(&pend, &c, 1);
                free(tok.p);
                continue;
            }
            if (pend.n) {
                size_t k = 0;
                int valid = 1;
                while (k < pend.n && valid) valid = bm_utf8_next((const unsigned char *)pend.p, pend.n, &k) >= 0;
                if (valid) st = sb_add(&cur, pend.p, pend.n);
                else
                    for (size_t b = 0; st == 0 && b < pend.n; b++) st = sb_add(&cur, "\xef\xbf\xbd", 3);
                pend.n = 0;
            }
            if (!st && i < n) st = sb_add(&cur, tok.p, tok.n);
            free(tok.p);
        }
        /* Fuse joins the tokens (they are joined in the end anyway); Strip comes after it */
        for (int k = 0; st == 0 && k < t->n_dsteps; k++) { /* the steps after Fuse, in order, on the whole text */
            const dec_step *d = &t->dsteps[k];
            size_t b = 0, e = cur.n;
            if (d->kind == DSTEP_STRIP) {
                const size_t cl = strlen(d->a);
                for (int x = 0; x < d->start && e - b >= cl && !memcmp(cur.p + b, d->a, cl); x++) b += cl;
                for (int x = 0; x < d->stop && e - b >= cl && !memcmp(cur.p + e - cl, d->a, cl); x++) e -= cl;
            } else if (d->kind == DSTEP_METASPACE) {
                /* after Fuse the text is one token, the first: Hugging Face drops every replacement
                 * character of the first token when it prepends one, else makes each a space */
                sbuf r = {0};
                st = replace_all(cur.p ? cur.p : "", cur.n, d->a, d->start ? "" : " ", &r);
                free(cur.p);
                cur = r, e = cur.n;
            } else
                continue;
            memmove(cur.p, cur.p + b, e - b);
            cur.n = e - b;
        }
        if (!st) st = sb_add(&out, cur.p ? cur.p : "", cur.n);
        free(cur.p), free(pend.p);
    } else if (!st)
        st = sb_add(&out, all.p, all.n);
    free(start);
    free(all.p);
    if (st) {
        free(out.p);
        return bm_fail(BMOJO_ENOMEM, "out of host memory");
    }
    *text = out.p, *len = out.n;
    return 0;
}
