/* arch.c - the architecture table. One row per supported general.architecture.
 *
 * Only rows whose flags the forward pass implements are listed; a model with
 * another architecture is refused by name at load time. */
#include <string.h>

#include "model/model.h"

static const pc_arch_desc ARCHS[] = {
    /* name     norm          position            ffn            qkv_bias qk_norm post_norms embd_scale */
    {"llama", PC_NORM_RMS, PC_POS_ROPE_NORMAL, PC_FFN_SWIGLU, false, false, false, false},
    {"mistral", PC_NORM_RMS, PC_POS_ROPE_NORMAL, PC_FFN_SWIGLU, false, false, false, false},
    {"qwen2", PC_NORM_RMS, PC_POS_ROPE_NEOX, PC_FFN_SWIGLU, true, false, false, false},
};

const pc_arch_desc *pc_arch_find(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (strlen(ARCHS[i].name) == len && memcmp(ARCHS[i].name, name, len) == 0) return &ARCHS[i];
    return NULL;
}
