/* recurrent_memory.c — bmojo_config_recurrent_memory: what one sequence of a model keeps of its
 * past, in floats, summed over the sublayers' kinds (bm_layer_kind.recurrent_memory). The x-axis
 * of the recall study (docs/experiments/mqar.md); needs a config only, no device. */
#include <string.h>
#include <sys/stat.h>

#include "bmojo.h"
#include "config.h"
#include "error.h"
#include "layer_kind.h"

/* A folder holds config.yaml or config.json; a file ending in .json is a Hugging Face config. */
static int load_any(const char *path, bm_config *c)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return bm_config_load_dir(path, c);
    const size_t n = strlen(path);
    if (n >= 5 && !strcmp(path + n - 5, ".json")) return bm_config_load_hf(path, c);
    return bm_config_load_yaml(path, c);
}

int bmojo_config_recurrent_memory(const char *config_path, int64_t context, bmojo_recurrent_memory *out)
{
    if (!config_path || !out) return bm_fail(BMOJO_EINVAL, "bmojo_config_recurrent_memory: NULL argument");
    if (context < 1)
        return bm_fail(BMOJO_EINVAL, "recurrent memory: the context must be at least 1 token (got %lld)",
                       (long long)context);
    memset(out, 0, sizeof *out);
    bm_config c;
    int st = load_any(config_path, &c);
    if (st) return st;
    for (int i = 0; i < c.n_layers; i++) {
        const bm_layer_kind *k = bm_layer_kind_of(c.layers[i].type);
        if (k && k->recurrent_memory) k->recurrent_memory(&c.layers[i], context, out);
    }
    out->total = out->ssm + out->window_kv + out->context_kv + out->fading_kv + out->eidetic_kv;
    bm_config_free(&c);
    return 0;
}
