/* test_config.c — tests of the model configuration: every .yaml file in configs/ and every fixture config
 * loads with the expected layer stack; every fixture's mapped tensor names are exactly the tensors
 * of its model.safetensors; and a corpus of bad configs (YAML and HF) fails with the right status
 * and a message that names the offending key. Prints "N passed, N failed"; exits non-zero on
 * failure. Environment: BMOJO_SOURCE_ROOT (the repo), BMOJO_FIXTURES (the golden fixtures). */
#include "config.h"
#include "layer_kind.h"
#include "safetensors.h"

#include "bmojo.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int n_pass, n_fail;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (cond) {                                                                       \
            n_pass++;                                                                     \
        } else {                                                                          \
            n_fail++;                                                                     \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            printf(__VA_ARGS__);                                                          \
            printf("\n");                                                                 \
        }                                                                                 \
    } while (0)

static char tmpdir[256];

static const char *write_tmp(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        printf("cannot write %s\n", path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

static int count_type(const bm_config *c, bm_layer_type t)
{
    int n = 0;
    for (int i = 0; i < c->n_layers; i++)
        n += c->layers[i].type == t;
    return n;
}

/* ---- every tensor of a checkpoint is accounted for by the config's names ---- */

static int name_in_file(const bm_st_file *f, const char *name) { return bm_st_find(f, name) != NULL; }

/* The native suffixes of a layer's tensors (contract section 3), given its options. */
static int layer_suffixes(const bm_layer_cfg *l, const char **out)
{
    int n = 0;
    out[n++] = "norm.weight";
    if (l->type == BM_LAYER_MAMBA || l->type == BM_LAYER_BMOJO) {
        static const char *const m[] = {"mamba.in_proj.weight", "mamba.conv1d.weight", "mamba.x_proj.weight",
                                        "mamba.dt_proj.weight", "mamba.dt_proj.bias", "mamba.A_log", "mamba.D",
                                        "mamba.out_proj.weight"};
        for (int k = 0; k < 8; k++)
            out[n++] = m[k];
        if (l->mamba.conv_bias)
            out[n++] = "mamba.conv1d.bias";
        if (l->mamba.proj_bias) {
            out[n++] = "mamba.in_proj.bias";
            out[n++] = "mamba.out_proj.bias";
        }
        if (l->mamba.dt_bc_norm) {
            out[n++] = "mamba.dt_norm.weight";
            out[n++] = "mamba.b_norm.weight";
            out[n++] = "mamba.c_norm.weight";
        }
    }
    if (l->type == BM_LAYER_ATTENTION || l->type == BM_LAYER_BMOJO) {
        out[n++] = "attn.q_proj.weight";
        out[n++] = "attn.k_proj.weight";
        out[n++] = "attn.v_proj.weight";
        out[n++] = "attn.o_proj.weight";
    }
    if (l->type == BM_LAYER_MLP) {
        out[n++] = "mlp.gate_proj.weight";
        out[n++] = "mlp.up_proj.weight";
        out[n++] = "mlp.down_proj.weight";
    }
    return n;
}

static void check_names_against_file(const bm_config *c, const char *dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    bm_st_file f;
    int st = bm_st_open(path, &f);
    CHECK(st == 0, "%s: bm_st_open: %s", path, bmojo_last_error());
    if (st)
        return;
    int mapped = 0;
    CHECK(name_in_file(&f, c->embed_name), "%s: embed %s", dir, c->embed_name);
    CHECK(name_in_file(&f, c->norm_f_name), "%s: norm_f %s", dir, c->norm_f_name);
    mapped += 2;
    if (name_in_file(&f, c->lm_head_name))
        mapped++;
    else
        CHECK(c->tie_embeddings, "%s: no %s but tie_embeddings is false", dir, c->lm_head_name);
    for (int i = 0; i < c->n_layers; i++) {
        const char *suf[32];
        int n = layer_suffixes(&c->layers[i], suf);
        for (int k = 0; k < n; k++) {
            char name[256];
            st = bm_config_tensor_name(c, i, suf[k], name, sizeof name);
            CHECK(st == 0, "%s: layers.%d.%s: %s", dir, i, suf[k], bmojo_last_error());
            CHECK(name_in_file(&f, name), "%s: layers.%d.%s -> %s is not in the checkpoint", dir, i, suf[k], name);
            mapped++;
        }
    }
    /* Nothing in the file left unmapped: the config describes every tensor. */
    CHECK(mapped == f.n, "%s: %d names mapped, the file has %d tensors", dir, mapped, f.n);
    bm_st_close(&f);
}

/* ---- configs/ ---- */

static void test_repo_configs(const char *root)
{
    char dirpath[1024];
    snprintf(dirpath, sizeof dirpath, "%s/configs", root);
    DIR *d = opendir(dirpath);
    CHECK(d != NULL, "cannot open %s", dirpath);
    if (!d)
        return;
    int n_files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml"))
            continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dirpath, e->d_name);
        bm_config c;
        int st = bm_config_load_yaml(path, &c);
        CHECK(st == 0, "%s: %s", path, bmojo_last_error());
        if (st)
            continue;
        n_files++;
        /* The name matches the file name. */
        CHECK(strncmp(c.name, e->d_name, len - 5) == 0 && strlen(c.name) == len - 5, "%s: name %s", path, c.name);
        CHECK(c.source == BM_SOURCE_YAML, "%s", path);
        CHECK(!strcmp(c.layers[0].norm_name, "layers.0.norm.weight"), "%s", path);
        char nm[128];
        CHECK(bm_config_tensor_name(&c, c.n_layers - 1, "norm.weight", nm, sizeof nm) == 0, "%s", path);
        char want[64];
        snprintf(want, sizeof want, "layers.%d.norm.weight", c.n_layers - 1);
        CHECK(!strcmp(nm, want), "%s: %s", path, nm);
        if (strstr(e->d_name, "130m")) { /* -text: the committed tokenizer's vocabulary (configs/tokenizers) */
            const int vocab = strstr(e->d_name, "-text") ? 4096 : 32000;
            CHECK(c.vocab_size == vocab && c.d_model == 768 && c.tie_embeddings, "%s", path);
        }
        if (!strcmp(e->d_name, "bmojo-130m.yaml") || !strcmp(e->d_name, "bmojo-f-130m.yaml") ||
            !strcmp(e->d_name, "bmojo-130m-text.yaml")) {
            int f = strstr(e->d_name, "-f-") != NULL;
            CHECK(c.n_layers == 24 && count_type(&c, BM_LAYER_BMOJO) == 24, "%s", path);
            for (int i = 0; i < c.n_layers; i++) {
                const bm_layer_cfg *l = &c.layers[i];
                CHECK(l->attn.window == 512 && l->fading_tokens == 4 && l->eidetic_tokens == (f ? 0 : 32) &&
                          l->attn.heads == 12 && l->attn.kv_heads == 4 && l->attn.head_dim == 64 &&
                          l->attn.rope_theta == 0.0f && l->mamba.expand == 2 && l->mamba.d_state == 16 &&
                          l->mamba.d_conv == 4 && l->mamba.dt_rank == 48 && l->mamba.d_inner == 1536 &&
                          l->mamba.conv_bias && !l->mamba.proj_bias && !l->mamba.dt_bc_norm && l->n_taps == 4 &&
                          l->taps[0] == 0.25f && l->taps[3] == 0.25f,
                      "%s: layers[%d]", path, i);
            }
        } else if (!strcmp(e->d_name, "mamba-130m.yaml")) {
            CHECK(c.n_layers == 24 && count_type(&c, BM_LAYER_MAMBA) == 24, "%s", path);
            CHECK(c.layers[23].mamba.dt_rank == 48 && c.layers[23].mamba.d_inner == 1536, "%s", path);
        } else if (!strcmp(e->d_name, "swa-130m.yaml")) {
            CHECK(c.n_layers == 24 && count_type(&c, BM_LAYER_ATTENTION) == 12 && count_type(&c, BM_LAYER_MLP) == 12,
                  "%s", path);
            for (int i = 0; i < c.n_layers; i++) {
                const bm_layer_cfg *l = &c.layers[i];
                if (i % 2 == 0)
                    CHECK(l->type == BM_LAYER_ATTENTION && l->attn.window == 512 && l->attn.rope_theta == 10000.0f &&
                              l->attn.heads == 12 && l->attn.kv_heads == 4 && l->attn.head_dim == 64,
                          "%s: layers[%d]", path, i);
                else
                    CHECK(l->type == BM_LAYER_MLP && l->intermediate == 2048, "%s: layers[%d]", path, i);
            }
        } else if (!strcmp(e->d_name, "jamba-130m.yaml")) {
            CHECK(count_type(&c, BM_LAYER_ATTENTION) >= 1 && count_type(&c, BM_LAYER_MAMBA) >= 1 &&
                      count_type(&c, BM_LAYER_MLP) >= 1,
                  "%s", path);
            for (int i = 0; i < c.n_layers; i++)
                if (c.layers[i].type == BM_LAYER_ATTENTION)
                    CHECK(c.layers[i].attn.rope_theta == 0.0f, "%s: layers[%d]: Jamba attention has no rope", path, i);
        } else if (!strcmp(e->d_name, "bmojo-tiny.yaml")) {
            /* the spec's example, exactly */
            CHECK(c.n_layers == 2 && c.vocab_size == 320 && c.d_model == 64 && fabsf(c.norm_eps - 1e-5f) < 1e-12f,
                  "%s", path);
            const bm_layer_cfg *l = &c.layers[0];
            CHECK(l->type == BM_LAYER_BMOJO && l->attn.window == 32 && l->fading_tokens == 4 &&
                      l->eidetic_tokens == 8 && l->attn.heads == 4 && l->attn.kv_heads == 2 &&
                      l->attn.head_dim == 16 && l->mamba.dt_rank == 4 && l->mamba.d_inner == 128,
                  "%s", path);
            CHECK(c.layers[1].type == BM_LAYER_MLP && c.layers[1].intermediate == 192, "%s", path);
            char buf[128];
            CHECK(bm_config_tensor_name(&c, 0, "attn.q_proj.weight", buf, sizeof buf) == 0 &&
                      !strcmp(buf, "layers.0.attn.q_proj.weight"), "%s", buf);
            CHECK(bm_config_tensor_name(&c, 0, "mamba.dt_norm.weight", buf, sizeof buf) == 0 &&
                      !strcmp(buf, "layers.0.mamba.dt_norm.weight"), "%s", buf);
            CHECK(bm_config_tensor_name(&c, 1, "mlp.up_proj.weight", buf, sizeof buf) == 0 &&
                      !strcmp(buf, "layers.1.mlp.up_proj.weight"), "%s", buf);
            /* suffixes of another kind, out-of-range layers, short buffers: EINVAL */
            CHECK(bm_config_tensor_name(&c, 1, "attn.q_proj.weight", buf, sizeof buf) == BMOJO_EINVAL, "mlp has no attn");
            CHECK(bm_config_tensor_name(&c, 0, "mlp.up_proj.weight", buf, sizeof buf) == BMOJO_EINVAL, "bmojo has no mlp");
            CHECK(bm_config_tensor_name(&c, 0, "mamba.", buf, sizeof buf) == BMOJO_EINVAL, "empty suffix");
            CHECK(bm_config_tensor_name(&c, 0, "bogus.weight", buf, sizeof buf) == BMOJO_EINVAL, "bogus");
            CHECK(bm_config_tensor_name(&c, 2, "norm.weight", buf, sizeof buf) == BMOJO_EINVAL, "layer 2");
            CHECK(bm_config_tensor_name(&c, -1, "norm.weight", buf, sizeof buf) == BMOJO_EINVAL, "layer -1");
            CHECK(bm_config_tensor_name(&c, 0, "attn.q_proj.weight", buf, 8) == BMOJO_EINVAL, "short buffer");
            CHECK(!strcmp(c.embed_name, "embed.weight") && !strcmp(c.norm_f_name, "norm_f.weight") &&
                      !strcmp(c.lm_head_name, "lm_head.weight"), "%s", path);
        } else if (!strcmp(e->d_name, "mamba-tiny.yaml")) {
            CHECK(c.n_layers == 2 && count_type(&c, BM_LAYER_MAMBA) == 2 && c.layers[1].mamba.dt_rank == 4, "%s", path);
        } else if (!strcmp(e->d_name, "swa-tiny.yaml")) {
            CHECK(c.n_layers == 4 && c.layers[2].attn.window == 16 && c.layers[2].attn.rope_theta == 10000.0f &&
                      !c.tie_embeddings, "%s", path);
        } else if (!strcmp(e->d_name, "jamba-tiny.yaml")) {
            CHECK(c.n_layers == 8 && c.layers[2].type == BM_LAYER_ATTENTION && c.layers[4].mamba.dt_bc_norm &&
                      c.layers[2].attn.window == 0 && c.layers[2].attn.rope_theta == 0.0f, "%s", path);
        }
        bm_config_free(&c);
        CHECK(c.layers == NULL && c.n_layers == 0, "free clears");
    }
    closedir(d);
    CHECK(n_files >= 9, "only %d configs loaded from %s", n_files, dirpath);
}

/* ---- fixtures ---- */

static void test_fixtures(const char *fx)
{
    static const char *const dirs[] = {"hf/mamba-0", "hf/mamba-1", "hf/mistral-0", "hf/mistral-1", "hf/jamba-0",
                                       "bmojo/bmojo-small", "bmojo/bmojo-f-small"};
    for (size_t k = 0; k < sizeof dirs / sizeof dirs[0]; k++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", fx, dirs[k]);
        bm_config c;
        int st = bm_config_load_dir(dir, &c);
        CHECK(st == 0, "%s: %s", dir, bmojo_last_error());
        if (st)
            continue;
        const char *base = strchr(dirs[k], '/') + 1;
        CHECK(!strcmp(c.name, base), "%s: name %s", dir, c.name);
        CHECK(c.vocab_size == 320, "%s", dir);
        /* eos_token_id: config.json's (mamba 0, mistral and jamba 2); config.yaml has none */
        const int want_eos = dirs[k][0] == 'b' ? -1 : strstr(dirs[k], "mamba") ? 0 : 2;
        CHECK((c.has_eos ? c.eos_token_id : -1) == want_eos, "%s: eos_token_id %d (has %d), expected %d", dir,
              c.eos_token_id, (int)c.has_eos, want_eos);
        if (!strcmp(dirs[k], "hf/mamba-0")) {
            CHECK(c.source == BM_SOURCE_HF_MAMBA && c.n_layers == 2 && count_type(&c, BM_LAYER_MAMBA) == 2, "%s", dir);
            CHECK(c.d_model == 64 && c.layers[0].mamba.d_state == 16 && c.layers[0].mamba.dt_rank == 4 &&
                      c.layers[0].mamba.d_inner == 128 && c.layers[0].mamba.conv_bias && !c.layers[0].mamba.proj_bias &&
                      c.tie_embeddings && fabsf(c.norm_eps - 1e-5f) < 1e-12f, "%s", dir);
            char buf[128];
            CHECK(bm_config_tensor_name(&c, 1, "mamba.A_log", buf, sizeof buf) == 0 &&
                      !strcmp(buf, "backbone.layers.1.mixer.A_log"), "%s", buf);
        } else if (!strcmp(dirs[k], "hf/mamba-1")) {
            CHECK(c.n_layers == 3 && c.d_model == 128 && c.layers[2].mamba.d_state == 8 && c.layers[2].mamba.dt_rank == 8,
                  "%s", dir);
        } else if (!strncmp(dirs[k], "hf/mistral", 10)) {
            int one = dirs[k][11] == '1';
            CHECK(c.source == BM_SOURCE_HF_MISTRAL && c.n_layers == (one ? 6 : 4), "%s", dir);
            for (int i = 0; i < c.n_layers; i++) {
                const bm_layer_cfg *l = &c.layers[i];
                if (i % 2 == 0)
                    CHECK(l->type == BM_LAYER_ATTENTION && l->attn.window == (one ? 32 : 16) &&
                              l->attn.rope_theta == 10000.0f && l->attn.heads == (one ? 6 : 4) &&
                              l->attn.kv_heads == (one ? 3 : 2) && l->attn.head_dim == 16,
                          "%s: layers[%d]", dir, i);
                else
                    CHECK(l->type == BM_LAYER_MLP && l->intermediate == (one ? 288 : 192), "%s: layers[%d]", dir, i);
            }
            CHECK(!c.tie_embeddings && fabsf(c.norm_eps - 1e-6f) < 1e-13f, "%s", dir);
            char buf[128];
            CHECK(bm_config_tensor_name(&c, 3, "mlp.down_proj.weight", buf, sizeof buf) == 0 &&
                      !strcmp(buf, "model.layers.1.mlp.down_proj.weight"), "%s", buf);
            CHECK(bm_config_tensor_name(&c, 2, "norm.weight", buf, sizeof buf) == 0 &&
                      !strcmp(buf, "model.layers.1.input_layernorm.weight"), "%s", buf);
        } else if (!strcmp(dirs[k], "hf/jamba-0")) {
            /* attn_layer_period 2, offset 1: HF layers 1 and 3 are attention = native 2 and 6 */
            CHECK(c.source == BM_SOURCE_HF_JAMBA && c.n_layers == 8, "%s", dir);
            static const bm_layer_type want[8] = {BM_LAYER_MAMBA, BM_LAYER_MLP, BM_LAYER_ATTENTION, BM_LAYER_MLP,
                                                  BM_LAYER_MAMBA, BM_LAYER_MLP, BM_LAYER_ATTENTION, BM_LAYER_MLP};
            for (int i = 0; i < c.n_layers && i < 8; i++)
                CHECK(c.layers[i].type == want[i], "%s: layers[%d] is %s", dir, i, bm_layer_type_name(c.layers[i].type));
            CHECK(c.layers[2].attn.rope_theta == 0.0f && c.layers[2].attn.window == 0 && c.layers[2].attn.heads == 4 &&
                      c.layers[2].attn.kv_heads == 2 && c.layers[2].attn.head_dim == 16, "%s", dir);
            CHECK(c.layers[0].mamba.dt_bc_norm && c.layers[0].mamba.dt_rank == 4 && c.layers[0].mamba.conv_bias &&
                      !c.layers[0].mamba.proj_bias, "%s", dir);
            CHECK(!c.tie_embeddings && c.layers[1].intermediate == 192, "%s", dir);
            char buf[128];
            CHECK(bm_config_tensor_name(&c, 4, "mamba.dt_norm.weight", buf, sizeof buf) == 0 &&
                      !strcmp(buf, "model.layers.2.mamba.dt_layernorm.weight"), "%s", buf);
            CHECK(bm_config_tensor_name(&c, 7, "norm.weight", buf, sizeof buf) == 0 &&
                      !strcmp(buf, "model.layers.3.pre_ff_layernorm.weight"), "%s", buf);
            CHECK(!strcmp(c.norm_f_name, "model.final_layernorm.weight"), "%s", c.norm_f_name);
        } else {
            int f = strstr(dirs[k], "-f-") != NULL;
            CHECK(c.source == BM_SOURCE_YAML && c.n_layers == (f ? 3 : 4) && c.layers[0].type == BM_LAYER_BMOJO &&
                      c.layers[0].attn.window == 16 && c.layers[0].fading_tokens == 2 &&
                      c.layers[0].eidetic_tokens == (f ? 0 : 4) && c.layers[1].type == BM_LAYER_MLP, "%s", dir);
        }
        check_names_against_file(&c, dir);
        bm_config_free(&c);
    }
}

/* ---- bad configs ---- */

typedef struct {
    const char *text;
    int status;
    const char *needle; /* the message must contain it (the offending key) */
} bad_case;

#define Y_HEAD "name: t\nvocab_size: 32\nd_model: 16\n"

static const bad_case bad_yaml[] = {
    {Y_HEAD "colour: red\nlayers:\n  - {type: mlp, intermediate: 8}\n", BMOJO_ECONFIG, "colour"},
    {Y_HEAD "layers:\n  - {type: mlp, intermediate: 8, bogus: 1}\n", BMOJO_ECONFIG, "bogus"},
    {Y_HEAD "layers:\n  - {type: mlp, intermediate: 8, heads: 2}\n", BMOJO_ECONFIG, "heads"},
    {Y_HEAD "layers:\n  - {type: mamba, intermediate: 8}\n", BMOJO_ECONFIG, "intermediate"},
    {Y_HEAD "layers:\n  - {type: attention, heads: 2, rope_theta: 10000, fading_tokens: 2}\n", BMOJO_ECONFIG,
     "fading_tokens"},
    {Y_HEAD "layers:\n  - {type: bmojo, window: 4, heads: 2, head_dim: 3, fading_tokens: 1, eidetic_tokens: 1, "
            "rope_theta: 1}\n",
     BMOJO_ECONFIG, "rope_theta"},
    {Y_HEAD "layers:\n  - {type: bmojo, window: 4, heads: 2, fading_tokens: 1, eidetic_tokens: 1, rope_theta: -1}\n",
     BMOJO_ECONFIG, "rope_theta"},
    {Y_HEAD "layers:\n  - {type: convolution}\n", BMOJO_ECONFIG, "convolution"},
    {Y_HEAD "layers:\n  - {intermediate: 8}\n", BMOJO_ECONFIG, "type"},
    {Y_HEAD "layers:\n  - {type: attention, heads: 6, kv_heads: 4, head_dim: 4}\n", BMOJO_ECONFIG, "kv_heads"},
    {Y_HEAD "layers:\n  - {type: bmojo, window: 0, heads: 2, fading_tokens: 1, eidetic_tokens: 1}\n", BMOJO_ECONFIG,
     "window"},
    {Y_HEAD "layers:\n  - {type: bmojo, heads: 2, fading_tokens: 1, eidetic_tokens: 1}\n", BMOJO_ECONFIG, "window"},
    {Y_HEAD "layers:\n  - {type: bmojo, window: 4, heads: 2, fading_tokens: -1, eidetic_tokens: 1}\n", BMOJO_ECONFIG,
     "fading_tokens"},
    {Y_HEAD "layers:\n  - {type: bmojo, window: 4, heads: 2, fading_tokens: 1, eidetic_tokens: 5000}\n", BMOJO_ECONFIG,
     "eidetic_tokens"},
    {Y_HEAD "layers:\n  - {type: attention, heads: abc}\n", BMOJO_ECONFIG, "heads"},
    {Y_HEAD "layers:\n  - {type: attention, heads: 4.5}\n", BMOJO_ECONFIG, "heads"},
    {Y_HEAD "layers:\n  - {type: attention, heads: '4'}\n", BMOJO_ECONFIG, "heads"},
    {Y_HEAD "layers:\n  - {type: attention, heads: 4, window: 1.0e3}\n", BMOJO_ECONFIG, "window"},
    {Y_HEAD "layers:\n  - {type: attention, heads: 2, window: 99999999999999999999}\n", BMOJO_ECONFIG, "window"},
    {Y_HEAD "layers:\n  - {type: attention, heads: 2, window: 2000000}\n", BMOJO_ECONFIG, "window"},
    {Y_HEAD "layers:\n  - {type: attention, heads: 2, head_dim: 7, rope_theta: 10000}\n", BMOJO_ECONFIG, "head_dim"},
    {Y_HEAD "layers:\n  - {type: attention, heads: 3}\n", BMOJO_ECONFIG, "head_dim"},
    {Y_HEAD "layers:\n  - {type: attention, heads: 2, rope_theta: abc}\n", BMOJO_ECONFIG, "rope_theta"},
    {Y_HEAD "layers:\n  - {type: attention, heads: 2, rope_theta: -5}\n", BMOJO_ECONFIG, "rope_theta"},
    {Y_HEAD "layers:\n  - {type: attention}\n", BMOJO_ECONFIG, "heads"},
    {Y_HEAD "layers:\n  - {type: mlp}\n", BMOJO_ECONFIG, "intermediate"},
    {Y_HEAD "layers:\n  - {type: mlp, intermediate: 0}\n", BMOJO_ECONFIG, "intermediate"},
    {Y_HEAD "layers:\n  - {type: mamba, d_state: 0}\n", BMOJO_ECONFIG, "d_state"},
    {Y_HEAD "layers:\n  - {type: mamba, d_conv: -2}\n", BMOJO_ECONFIG, "d_conv"},
    {Y_HEAD "layers:\n  - {type: mamba, dt_rank: 0}\n", BMOJO_ECONFIG, "dt_rank"},
    {Y_HEAD "layers:\n  - {type: mamba, expand: 0}\n", BMOJO_ECONFIG, "expand"},
    {"vocab_size: 32\nd_model: 65536\nlayers:\n  - {type: mamba, expand: 32}\n", BMOJO_ECONFIG, "expand"},
    {Y_HEAD "layers:\n  - {type: mamba, conv_bias: maybe}\n", BMOJO_ECONFIG, "conv_bias"},
    {Y_HEAD "layers:\n  - {type: bmojo, window: 4, heads: 2, fading_tokens: 1, eidetic_tokens: 1, predictor: []}\n",
     BMOJO_ECONFIG, "predictor"},
    {Y_HEAD "layers:\n  - {type: bmojo, window: 4, heads: 2, fading_tokens: 1, eidetic_tokens: 1, predictor: 0.5}\n",
     BMOJO_ECONFIG, "predictor"},
    {Y_HEAD "layers:\n  - {type: bmojo, window: 4, heads: 2, fading_tokens: 1, eidetic_tokens: 1, predictor: [1, x]}\n",
     BMOJO_ECONFIG, "predictor"},
    {Y_HEAD "layers:\n  - {type: bmojo, window: 4, heads: 2, fading_tokens: 1, eidetic_tokens: 1,\n"
            "     predictor: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}\n", BMOJO_ECONFIG, "predictor"},
    {Y_HEAD "layers:\n  - {type: bmojo, window: 4, heads: 2, fading_tokens: 1}\n", BMOJO_ECONFIG, "eidetic_tokens"},
    {Y_HEAD, BMOJO_ECONFIG, "layers"},
    {Y_HEAD "layers: []\n", BMOJO_ECONFIG, "layers"},
    {Y_HEAD "layers: 3\n", BMOJO_ECONFIG, "layers"},
    {Y_HEAD "layers:\n  - 5\n", BMOJO_ECONFIG, "layers[0]"},
    {"name: t\nd_model: 16\nlayers:\n  - {type: mlp, intermediate: 8}\n", BMOJO_ECONFIG, "vocab_size"},
    {"name: t\nvocab_size: 32\nlayers:\n  - {type: mlp, intermediate: 8}\n", BMOJO_ECONFIG, "d_model"},
    {"vocab_size: 99999999\nd_model: 16\nlayers:\n  - {type: mlp, intermediate: 8}\n", BMOJO_ECONFIG, "vocab_size"},
    {"vocab_size: 32\nd_model: 70000\nlayers:\n  - {type: mlp, intermediate: 8}\n", BMOJO_ECONFIG, "d_model"},
    {"vocab_size: 0\nd_model: 16\nlayers:\n  - {type: mlp, intermediate: 8}\n", BMOJO_ECONFIG, "vocab_size"},
    {Y_HEAD "norm_eps: 0\nlayers:\n  - {type: mlp, intermediate: 8}\n", BMOJO_ECONFIG, "norm_eps"},
    {Y_HEAD "norm_eps: .nan\nlayers:\n  - {type: mlp, intermediate: 8}\n", BMOJO_ECONFIG, "norm_eps"},
    {Y_HEAD "tie_embeddings: maybe\nlayers:\n  - {type: mlp, intermediate: 8}\n", BMOJO_ECONFIG, "tie_embeddings"},
    {"", BMOJO_ECONFIG, "empty"},
    {"# only a comment\n", BMOJO_ECONFIG, "empty"},
    {"- 1\n- 2\n", BMOJO_ECONFIG, "mapping"},
    {Y_HEAD "layers:\n  - {type: mlp, intermediate: 8\n", BMOJO_ECONFIG, "syntax"},
    {Y_HEAD "layers: [\n", BMOJO_ECONFIG, "syntax"},
    {Y_HEAD "d_model: 32\nlayers:\n  - {type: mlp, intermediate: 8}\n", BMOJO_ECONFIG, "d_model"},
    {Y_HEAD "layers:\n  - {type: attention, heads: 2, heads: 4}\n", BMOJO_ECONFIG, "heads"},
    {Y_HEAD "layers:\n  - {type: mlp, type: mamba, intermediate: 8}\n", BMOJO_ECONFIG, "type"},
    {Y_HEAD "layers:\n  - {type: mlp, intermediate: 8}\n---\nfoo: 1\n", BMOJO_ECONFIG, "document"},
};

static const bad_case bad_hf[] = {
    {"{\"architectures\": [\"JambaForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 2,"
     " \"num_experts\": 2, \"intermediate_size\": 32, \"num_attention_heads\": 2}", BMOJO_EUNSUPPORTED, "num_experts"},
    {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 16}", BMOJO_EUNSUPPORTED, "LlamaForCausalLM"},
    {"{\"model_type\": \"gpt2\"}", BMOJO_EUNSUPPORTED, "gpt2"},
    {"{\"hidden_size\": 16}", BMOJO_ECONFIG, "architectures"},
    {"{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"num_attention_heads\": 2, \"intermediate_size\": 32,"
     " \"rope_parameters\": {\"rope_theta\": 10000.0, \"rope_type\": \"yarn\"}}", BMOJO_EUNSUPPORTED, "yarn"},
    {"{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"num_attention_heads\": 2, \"intermediate_size\": 32, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}}",
     BMOJO_EUNSUPPORTED, "linear"},
    {"{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"expand\": 2, \"intermediate_size\": 48}", BMOJO_ECONFIG, "intermediate_size"},
    {"{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"time_step_rank\": \"big\"}", BMOJO_ECONFIG, "time_step_rank"},
    {"{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"state_size\": 0}", BMOJO_ECONFIG, "state_size"},
    {"{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"eos_token_id\": 32}", BMOJO_ECONFIG, "eos_token_id"},
    {"{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"eos_token_id\": \"</s>\"}", BMOJO_ECONFIG, "eos_token_id"},
    {"{\"architectures\": [\"MambaForCausalLM\"], \"vocab_size\": 32, \"num_hidden_layers\": 1}", BMOJO_ECONFIG,
     "hidden_size"},
    {"{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": \"16\", \"vocab_size\": 32, \"num_hidden_layers\": 1}",
     BMOJO_ECONFIG, "hidden_size"},
    {"{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 0}",
     BMOJO_ECONFIG, "num_hidden_layers"},
    {"{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"hidden_act\": \"gelu\"}", BMOJO_EUNSUPPORTED, "hidden_act"},
    {"{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"num_attention_heads\": 6, \"num_key_value_heads\": 4, \"head_dim\": 4, \"intermediate_size\": 32}",
     BMOJO_ECONFIG, "num_key_value_heads"},
    {"{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"num_attention_heads\": 2, \"head_dim\": 7, \"intermediate_size\": 32}", BMOJO_ECONFIG, "head_dim"},
    {"{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"num_attention_heads\": 2, \"sliding_window\": 4096000, \"intermediate_size\": 32}", BMOJO_ECONFIG,
     "sliding_window"},
    {"{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 1,"
     " \"num_attention_heads\": 2}", BMOJO_ECONFIG, "intermediate_size"},
    {"{\"architectures\": [\"JambaForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32, \"num_hidden_layers\": 2,"
     " \"intermediate_size\": 32, \"num_attention_heads\": 2, \"attn_layer_period\": 2, \"attn_layer_offset\": 2}",
     BMOJO_ECONFIG, "attn_layer_offset"},
    {"{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": 16,", BMOJO_ECONFIG, "JSON"},
    {"", BMOJO_ECONFIG, "JSON"},
    {"[1, 2]", BMOJO_ECONFIG, "object"},
};

static void test_bad(void)
{
    for (size_t k = 0; k < sizeof bad_yaml / sizeof bad_yaml[0]; k++) {
        const char *path = write_tmp("config.yaml", bad_yaml[k].text);
        bm_config c;
        memset(&c, 0x5a, sizeof c);
        int st = bm_config_load_yaml(path, &c);
        const char *msg = bmojo_last_error();
        if (getenv("BMOJO_TEST_VERBOSE"))
            printf("yaml %2zu: %s\n", k, msg);
        CHECK(st == bad_yaml[k].status, "yaml case %zu: status %d (%s), want %d; message: %s", k, st,
              bmojo_strerror(st), bad_yaml[k].status, msg);
        CHECK(strstr(msg, bad_yaml[k].needle) != NULL, "yaml case %zu: message lacks \"%s\": %s", k,
              bad_yaml[k].needle, msg);
        CHECK(st == 0 || (c.layers == NULL && c.n_layers == 0), "yaml case %zu: config not cleared", k);
        if (st == 0)
            bm_config_free(&c);
    }
    for (size_t k = 0; k < sizeof bad_hf / sizeof bad_hf[0]; k++) {
        const char *path = write_tmp("config.json", bad_hf[k].text);
        bm_config c;
        memset(&c, 0x5a, sizeof c);
        int st = bm_config_load_hf(path, &c);
        const char *msg = bmojo_last_error();
        if (getenv("BMOJO_TEST_VERBOSE"))
            printf("hf %2zu: %s\n", k, msg);
        CHECK(st == bad_hf[k].status, "hf case %zu: status %d (%s), want %d; message: %s", k, st, bmojo_strerror(st),
              bad_hf[k].status, msg);
        CHECK(strstr(msg, bad_hf[k].needle) != NULL, "hf case %zu: message lacks \"%s\": %s", k, bad_hf[k].needle,
              msg);
        CHECK(st == 0 || (c.layers == NULL && c.n_layers == 0), "hf case %zu: config not cleared", k);
        if (st == 0)
            bm_config_free(&c);
    }
    /* The example message format of the brief: file, layer index and type, key. */
    const char *path = write_tmp("x.yaml", Y_HEAD "layers:\n  - {type: mlp, intermediate: 8}\n  - {type: mlp, intermediate: 8}\n"
                                           "  - {type: attention, heads: 6, kv_heads: 4, head_dim: 4}\n");
    bm_config c;
    int st = bm_config_load_yaml(path, &c);
    char want[600];
    snprintf(want, sizeof want, "%s: layers[2] (attention): heads (6) is not a multiple of kv_heads (4)", path);
    CHECK(st == BMOJO_ECONFIG && !strcmp(bmojo_last_error(), want), "got: %s", bmojo_last_error());
    if (st == 0)
        bm_config_free(&c);
    /* Missing files and folders. */
    snprintf(want, sizeof want, "%s/nope.yaml", tmpdir);
    st = bm_config_load_yaml(want, &c);
    CHECK(st == BMOJO_EIO && strstr(bmojo_last_error(), "nope.yaml"), "%d %s", st, bmojo_last_error());
    snprintf(want, sizeof want, "%s/nope.json", tmpdir);
    st = bm_config_load_hf(want, &c);
    CHECK(st == BMOJO_EIO && strstr(bmojo_last_error(), "nope.json"), "%d %s", st, bmojo_last_error());
    snprintf(want, sizeof want, "%s/empty-dir", tmpdir);
    mkdir(want, 0700);
    st = bm_config_load_dir(want, &c);
    CHECK(st == BMOJO_EIO && strstr(bmojo_last_error(), "empty-dir"), "%d %s", st, bmojo_last_error());
    rmdir(want);
}

/* ---- good variants ---- */

static void test_good_variants(void)
{
    bm_config c;
    /* Mistral: sliding_window null = full, top-level rope_theta (older transformers). */
    const char *p = write_tmp("config.json",
                              "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 32, \"vocab_size\": 50,"
                              " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 1,"
                              " \"intermediate_size\": 64, \"sliding_window\": null, \"rope_theta\": 500000.0,"
                              " \"rms_norm_eps\": 1e-5}");
    int st = bm_config_load_hf(p, &c);
    CHECK(st == 0, "%s", bmojo_last_error());
    if (!st) {
        CHECK(!c.has_eos, "no eos_token_id: none");
        CHECK(c.n_layers == 4 && c.layers[0].attn.window == 0 && c.layers[2].attn.rope_theta == 500000.0f &&
                  c.layers[0].attn.head_dim == 8 && c.layers[0].attn.kv_heads == 1 && !c.tie_embeddings,
              "window %d theta %g hd %d", c.layers[0].attn.window, (double)c.layers[2].attn.rope_theta,
              c.layers[0].attn.head_dim);
        bm_config_free(&c);
    }
    /* eos_token_id as a list (Llama 3 style): the first */
    p = write_tmp("config.json", "{\"model_type\": \"mistral\", \"hidden_size\": 32, \"vocab_size\": 50,"
                                 " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"intermediate_size\": 64,"
                                 " \"eos_token_id\": [7, 9]}");
    st = bm_config_load_hf(p, &c);
    CHECK(st == 0 && c.has_eos && c.eos_token_id == 7, "eos_token_id [7, 9] -> 7 (%s)", st ? bmojo_last_error() : "ok");
    if (!st) bm_config_free(&c);
    /* No RoPE key at all: 10000; sliding_window absent: full; rope_parameters with only the type. */
    p = write_tmp("config.json", "{\"model_type\": \"mistral\", \"hidden_size\": 32, \"vocab_size\": 50,"
                                 " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"intermediate_size\": 64,"
                                 " \"rope_parameters\": {\"rope_type\": \"default\"}, \"tie_word_embeddings\": true}");
    st = bm_config_load_hf(p, &c);
    CHECK(st == 0, "%s", bmojo_last_error());
    if (!st) {
        CHECK(c.layers[0].attn.rope_theta == 10000.0f && c.layers[0].attn.window == 0 && c.layers[0].attn.kv_heads == 4 &&
                  c.tie_embeddings, "theta %g", (double)c.layers[0].attn.rope_theta);
        bm_config_free(&c);
    }
    /* Mamba: time_step_rank "auto" = ceil(hidden / 16); tie default true. */
    p = write_tmp("config.json", "{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": 100, \"vocab_size\": 50,"
                                 " \"num_hidden_layers\": 1, \"time_step_rank\": \"auto\", \"use_bias\": true}");
    st = bm_config_load_hf(p, &c);
    CHECK(st == 0, "%s", bmojo_last_error());
    if (!st) {
        CHECK(c.layers[0].mamba.dt_rank == 7 && c.layers[0].mamba.d_inner == 200 && c.layers[0].mamba.proj_bias &&
                  c.tie_embeddings && c.layers[0].mamba.d_state == 16, "dt_rank %d", c.layers[0].mamba.dt_rank);
        bm_config_free(&c);
    }
    /* Jamba with HF defaults: period 8, offset 4, "auto" dt rank, sliding_window set. */
    p = write_tmp("config.json", "{\"architectures\": [\"JambaForCausalLM\"], \"hidden_size\": 32, \"vocab_size\": 50,"
                                 " \"num_hidden_layers\": 9, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,"
                                 " \"intermediate_size\": 64, \"mamba_dt_rank\": \"auto\", \"sliding_window\": 8}");
    st = bm_config_load_hf(p, &c);
    CHECK(st == 0, "%s", bmojo_last_error());
    if (!st) {
        CHECK(c.n_layers == 18 && count_type(&c, BM_LAYER_ATTENTION) == 1 && c.layers[8].type == BM_LAYER_ATTENTION &&
                  c.layers[8].attn.window == 8 && c.layers[8].attn.rope_theta == 0.0f &&
                  c.layers[0].mamba.dt_rank == 2 && c.layers[0].mamba.dt_bc_norm, "jamba defaults");
        bm_config_free(&c);
    }
    /* YAML: block style, defaults, nulls as absent, explicit predictor, comments, name from the file. */
    p = write_tmp("my-model.yaml", "# comment\nvocab_size: 32\nd_model: 40\nnorm_eps: 1e-6\ntie_embeddings: false\n"
                                   "layers:\n"
                                   "  - type: bmojo\n    window: 8\n    heads: 4\n    fading_tokens: 0\n"
                                   "    eidetic_tokens: 2\n    predictor: [0.5, 0.5]\n    dt_bc_norm: true\n"
                                   "  - {type: attention, heads: 4, kv_heads: ~, window: null}\n"
                                   "  - {type: mamba, proj_bias: true, conv_bias: false}\n");
    st = bm_config_load_yaml(p, &c);
    CHECK(st == 0, "%s", bmojo_last_error());
    if (!st) {
        const bm_layer_cfg *l = &c.layers[0];
        CHECK(!strcmp(c.name, "my-model") && !c.tie_embeddings && fabsf(c.norm_eps - 1e-6f) < 1e-13f, "%s", c.name);
        CHECK(l->n_taps == 2 && l->taps[0] == 0.5f && l->taps[1] == 0.5f && l->attn.kv_heads == 4 &&
                  l->attn.head_dim == 10 && l->mamba.dt_rank == 3 && l->mamba.dt_bc_norm && l->mamba.expand == 2 &&
                  l->mamba.d_state == 16 && l->mamba.d_conv == 4 && l->mamba.conv_bias, "bmojo defaults");
        CHECK(c.layers[1].attn.kv_heads == 4 && c.layers[1].attn.window == 0 && c.layers[1].attn.rope_theta == 0.0f,
              "attention defaults");
        CHECK(c.layers[2].mamba.proj_bias && !c.layers[2].mamba.conv_bias, "mamba biases");
        bm_config_free(&c);
    }
    /* A folder with both: config.yaml wins. */
    write_tmp("config.json", "{\"architectures\": [\"MambaForCausalLM\"], \"hidden_size\": 16, \"vocab_size\": 32,"
                             " \"num_hidden_layers\": 1}");
    write_tmp("config.yaml", Y_HEAD "layers:\n  - {type: mlp, intermediate: 8}\n");
    st = bm_config_load_dir(tmpdir, &c);
    CHECK(st == 0 && c.source == BM_SOURCE_YAML && c.layers[0].type == BM_LAYER_MLP, "yaml preferred: %s",
          bmojo_last_error());
    if (!st)
        bm_config_free(&c);
    char path[512];
    snprintf(path, sizeof path, "%s/config.yaml", tmpdir);
    unlink(path);
    st = bm_config_load_dir(tmpdir, &c);
    CHECK(st == 0 && c.source == BM_SOURCE_HF_MAMBA, "json fallback: %s", bmojo_last_error());
    if (!st)
        bm_config_free(&c);
    bm_config_free(&c); /* freeing a cleared config is harmless */
    CHECK(!strcmp(bm_layer_type_name(BM_LAYER_BMOJO), "bmojo") && !strcmp(bm_layer_type_name(BM_LAYER_MLP), "mlp") &&
              !strcmp(bm_layer_type_name(BM_LAYER_ATTENTION), "attention") &&
              !strcmp(bm_layer_type_name(BM_LAYER_MAMBA), "mamba"), "type names");
    /* every kind has its table (layer_kind.h), under its own type and name, with every function
     * the loader, the state and the forward call */
    for (int t = BM_LAYER_MAMBA; t <= BM_LAYER_BMOJO; t++) {
        const bm_layer_kind *k = bm_layer_kind_of((bm_layer_type)t);
        CHECK(k && k->type == (bm_layer_type)t && !strcmp(k->name, bm_layer_type_name(k->type)) && k->load &&
                  k->dims && k->describe && k->count && k->state_alloc && k->forward &&
                  (!k->state_grows || (k->state_cap_bytes && k->state_recap)),
              "layer kind table %d", t);
    }
    CHECK(!bm_layer_kind_of((bm_layer_type)(BM_LAYER_BMOJO + 1)) && !bm_layer_kind_of((bm_layer_type)-1),
          "no table for a value that is no kind");
}

static void cleanup_tmp(void)
{
    const char *names[] = {"config.yaml", "config.json", "x.yaml", "my-model.yaml"};
    char path[512];
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[k]);
        unlink(path);
    }
    rmdir(tmpdir);
}

/* config.yaml's nesting cap (64 levels, checked before libyaml builds a document, whose loader
 * is quadratic in depth): 64 levels pass that check, 65 and 100k are refused naming the cap, the
 * latter at once (SIGALRM ends the test if the quadratic loader runs). */
static void test_yaml_depth(void)
{
    const int depths[] = {64, 65, 100000};
    for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
        int d = depths[k]; /* the top-level mapping plus d - 1 flow sequences */
        char *text = malloc(2 * (size_t)d + 16);
        if (!text) {
            n_fail++;
            return;
        }
        size_t o = (size_t)sprintf(text, "x: ");
        memset(text + o, '[', (size_t)d - 1);
        memset(text + o + d - 1, ']', (size_t)d - 1);
        strcpy(text + o + 2 * (size_t)(d - 1), "\n");
        const char *path = write_tmp("x.yaml", text);
        free(text);
        bm_config c;
        alarm(60);
        int st = bm_config_load_yaml(path, &c);
        alarm(0);
        const char *e = bmojo_last_error();
        if (d <= 64)
            CHECK(st == BMOJO_ECONFIG && !strstr(e, "nesting"), "depth %d passes the nesting check, then fails on key x: %s", d, e);
        else
            CHECK(st == BMOJO_ECONFIG && strstr(e, "nesting deeper than 64 levels") && strstr(e, "x.yaml"),
                  "depth %d refused naming the cap: %s", d, e);
    }
}

int main(void)
{
    const char *root = getenv("BMOJO_SOURCE_ROOT");
    const char *fx = getenv("BMOJO_FIXTURES");
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/bmojo-test-config-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("cannot create a temporary folder\n");
        return 2;
    }
    if (root)
        test_repo_configs(root);
    else
        printf("BMOJO_SOURCE_ROOT not set: configs/ not tested\n"), n_fail++;
    if (fx)
        test_fixtures(fx);
    else
        printf("BMOJO_FIXTURES not set: fixtures not tested\n"), n_fail++;
    test_bad();
    test_good_variants();
    test_yaml_depth();
    cleanup_tmp();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
