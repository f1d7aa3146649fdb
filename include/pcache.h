/*
 * pcache.h - the public API of pcache, an LLM inference engine implementing
 * Prompt Cache (modular attention reuse).
 *
 * Conventions (the manual for every function below):
 *   - Every fallible function returns pc_status: PC_OK (0) or a negative code,
 *     and fills a caller-owned pc_error with a message saying what was wrong
 *     and where (file, offset, line, column, request). err may be NULL.
 *   - Handles are opaque. Each *_open / *_create has a *_free / *_close that is
 *     safe on NULL. Pointers handed out are owned by the handle unless the
 *     function's comment says the caller frees them (with pc_free).
 *   - No global mutable state: everything lives in the handles.
 */
#ifndef PCACHE_H
#define PCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pc_status {
    PC_OK = 0,
    PC_ERR_IO = -1,          /* a file could not be opened, read, mapped or written */
    PC_ERR_FORMAT = -2,      /* input is malformed (GGUF, PML, JSON, cache file) */
    PC_ERR_NOMEM = -3,       /* an allocation failed or a budget was exceeded */
    PC_ERR_INVALID = -4,     /* an argument or request is invalid */
    PC_ERR_UNSUPPORTED = -5, /* valid input that this build does not support */
    PC_ERR_RANGE = -6,       /* a size, count or index is out of range */
    PC_ERR_NOT_FOUND = -7,   /* a named thing (key, tensor, module, schema) does not exist */
} pc_status;

#define PC_ERROR_MSG_MAX 512

/* Caller-owned error report. code mirrors the returned status. */
typedef struct pc_error {
    pc_status code;
    char msg[PC_ERROR_MSG_MAX];
} pc_error;

/* A short static name for a status code ("format error", ...). */
const char *pc_strerror(pc_status s);

/* Frees memory that a pcache function handed to the caller. */
void pc_free(void *p);


/* ------------------------------------------------------------------------ */
/* Engine: a loaded model with its tokenizer, thread pool and scratch.        */
/* ------------------------------------------------------------------------ */

typedef struct pc_engine pc_engine;

typedef struct pc_engine_params {
    const char *model_path;    /* GGUF file; mapped, never copied */
    int n_threads;             /* <= 0: one per online CPU */
    int n_ctx;                 /* <= 0: the model's training context */
    int n_batch;               /* tokens per prefill chunk; <= 0: 512 */
    const char *chat_template; /* NULL: detect from the model; else "chatml", "llama2", "llama3", "gemma" */
} pc_engine_params;

pc_engine_params pc_engine_default_params(void);
/* Loads the model named by p->model_path. Free with pc_engine_free. */
pc_status pc_engine_open(const pc_engine_params *p, pc_engine **out, pc_error *err);
void pc_engine_free(pc_engine *e);

/* Model facts. */
int pc_engine_n_vocab(const pc_engine *e);
int pc_engine_n_ctx(const pc_engine *e);
size_t pc_engine_kv_bytes_per_token(const pc_engine *e);
const char *pc_engine_model_name(const pc_engine *e);
const char *pc_engine_isa(const pc_engine *e); /* SIMD path in use: "avx512vnni", "avx2", "scalar" */

/* Tokenizes text. add_special: BOS/EOS as the model's metadata says.
 * parse_special: special-token text (e.g. "<|im_start|>") becomes its token.
 * *ids is malloc'd: the caller frees it with pc_free. */
pc_status pc_engine_tokenize(const pc_engine *e, const char *text, size_t len, bool add_special, bool parse_special,
                             int32_t **ids, size_t *n_ids, pc_error *err);
/* Formats a single user message with the model's chat template (and its
 * generation prompt). *out is malloc'd: the caller frees it with pc_free. */
pc_status pc_engine_chat_prompt(const pc_engine *e, const char *system, const char *user, char **out, pc_error *err);

typedef struct pc_gen_params {
    int n_predict;            /* tokens to generate at most */
    float temp;               /* <= 0: greedy */
    int top_k;                /* <= 0: off */
    float top_p;              /* >= 1: off */
    float min_p;              /* <= 0: off */
    float repeat_penalty;     /* 1: off */
    int repeat_last_n;
    uint64_t seed;
    const char *const *stop;  /* stop strings (not included in the output) */
    size_t n_stop;
    bool ignore_eos;          /* keep going past end-of-generation tokens */
    float *first_logits;      /* optional, caller-owned [n_vocab]: receives the logits the first token is sampled from */
    /* Teacher forcing: step i (0 = first token) emits force_tokens[i] instead of
     * sampling, for i < n_force; later steps sample. Forced tokens still stop
     * generation at end-of-generation unless ignore_eos. */
    const int32_t *force_tokens;
    size_t n_force;
    /* Optional: called with the logits each generated token is chosen from
     * (step 0 = first token), before the choice; logits are valid only during
     * the call. Called exactly once per token in pc_gen_result.tokens. */
    void (*on_logits)(void *user, size_t step, const float *logits, int32_t n_vocab);
    void *logits_user;
} pc_gen_params;

pc_gen_params pc_gen_default_params(void);

/* Called for each piece of complete UTF-8 text as it is produced; return false to stop. */
typedef bool (*pc_token_cb)(void *user, int32_t token, const char *text, size_t len);

typedef enum pc_stop_reason { PC_STOP_LENGTH = 0, PC_STOP_EOG, PC_STOP_STRING, PC_STOP_CALLBACK, PC_STOP_CONTEXT } pc_stop_reason;

typedef struct pc_gen_result {
    int32_t *tokens;          /* generated ids (malloc'd; pc_gen_result_free) */
    size_t n_tokens;
    char *text;               /* generated text, NUL-terminated (malloc'd) */
    size_t n_prompt;          /* prompt tokens computed */
    double ttft_ms;           /* request start to first token sampled */
    double prefill_ms;        /* prefill compute alone */
    double decode_ms;         /* all decode steps after the first token */
    double decode_tok_s;      /* (n_tokens - 1) / decode time */
    size_t kv_bytes;          /* KV memory this generation allocated (prompt tokens and generated tokens) */
    pc_stop_reason stop;
} pc_gen_result;

void pc_gen_result_free(pc_gen_result *r);

/* Runs prompt[0..n) at positions 0..n-1 in a fresh context, then samples up to
 * p->n_predict tokens, streaming text through cb (may be NULL). */
pc_status pc_engine_generate(pc_engine *e, const int32_t *prompt, size_t n, const pc_gen_params *p, pc_token_cb cb,
                             void *user, pc_gen_result *out, pc_error *err);

/* Logits of the last prompt token (n_vocab floats into logits), prompt at positions 0..n-1. */
pc_status pc_engine_eval_logits(pc_engine *e, const int32_t *prompt, size_t n, float *logits, pc_error *err);

/* KL(P || Q) in nats, computed in double, where P = softmax(ref_logits) and
 * Q = softmax(logits) at temperature 1 over all n entries. Equal inputs give
 * exactly 0; rounding below 0 is clamped to 0. */
double pc_logits_kl(const float *ref_logits, const float *logits, int32_t n);

/* ------------------------------------------------------------------------ */
/* Prompt Cache: PML schemas (encoded once) and prompts that reuse them.      */
/* ------------------------------------------------------------------------ */

/* Progress of encoding a schema: pieces and tokens done so far. */
typedef void (*pc_progress_fn)(void *user, int32_t pieces_done, int32_t n_pieces, int64_t tokens_done,
                               int64_t n_tokens, double elapsed_ms);

typedef struct pc_schema_params {
    bool lenient;               /* recover from raw '<' in module text, with warnings */
    const char *src_root;       /* folder src= paths resolve against (NULL: the schema file's folder) */
    pc_progress_fn progress;    /* may be NULL */
    void *progress_user;
    /* Lenient-mode warnings, one per line, are appended here when non-NULL
     * (malloc'd; the caller frees with pc_free). */
    char **warnings;
} pc_schema_params;

/* Parses, lays out and encodes a schema file and registers it under its name
 * (a schema of the same name is an error). *name_out (may be NULL) receives the
 * name, malloc'd. Errors carry file, line and column. */
pc_status pc_engine_schema_load_file(pc_engine *e, const char *path, const pc_schema_params *p, char **name_out,
                                     pc_error *err);
/* Same from a buffer; doc_name labels errors. src= needs p->src_root. */
pc_status pc_engine_schema_load(pc_engine *e, const char *xml, size_t len, const char *doc_name,
                                const pc_schema_params *p, char **name_out, pc_error *err);
/* Unregisters a schema; requests already running keep their spans alive. */
pc_status pc_engine_schema_remove(pc_engine *e, const char *name, pc_error *err);

typedef struct pc_schema_stats {
    int32_t length;             /* L: positions the schema occupies */
    int32_t n_modules, n_unions, n_params, n_pieces;
    int64_t encoded_tokens;     /* tokens run through the model to encode it */
    size_t kv_bytes;            /* KV held in memory */
    size_t kv_bytes_per_token;  /* 2 x layers x kv_heads x head_dim x sizeof(f16) */
    double encode_ms;
} pc_schema_stats;

pc_status pc_engine_schema_stats(const pc_engine *e, const char *name, pc_schema_stats *out, pc_error *err);
/* A human-readable layout: every module and union with positions, token counts,
 * KV bytes, and the scaffold. *out is malloc'd; free with pc_free. */
pc_status pc_engine_schema_describe(const pc_engine *e, const char *name, char **out, pc_error *err);

typedef struct pc_run_params {
    pc_gen_params gen;
    bool use_cache;             /* false: plain prefill of the very same tokens at the same positions */
    bool lenient;
} pc_run_params;

typedef struct pc_run_result {
    pc_gen_result gen;          /* gen.ttft_ms counts from the request's start (parsing included) */
    int64_t cached_tokens;      /* reused from the cache, not computed */
    int64_t fresh_tokens;       /* computed for this request */
    double assemble_ms;         /* binding the prompt and listing the context's spans (no compute) */
    size_t kv_bytes;            /* KV memory the request allocated: none for cached tokens */
    int32_t *input_tokens;      /* the request's whole input in position order (cached and fresh), malloc'd */
    int32_t *input_pos;         /* their positions */
    size_t n_input;
} pc_run_result;

/* Runs a PML prompt against its registered schema. req_name labels errors.
 * Free the result with pc_run_result_free. */
pc_status pc_engine_run(pc_engine *e, const char *prompt_xml, size_t len, const char *req_name,
                        const pc_run_params *p, pc_token_cb cb, void *user, pc_run_result *out, pc_error *err);
void pc_run_result_free(pc_run_result *r);

#ifdef __cplusplus
}
#endif
#endif /* PCACHE_H */
