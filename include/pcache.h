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
 *   - Threads: an engine is shared by the threads of a server. What it holds
 *     (weights, tokenizer, schemas, the module store, thread pool) is shared; what a request
 *     owns (KV spans, sampler, logits, scratch) lives in the request. Every
 *     function below may be called from several threads at once on one
 *     engine unless its comment says otherwise; compute calls take turns on
 *     the engine's thread pool job by job. Requests and callbacks say which
 *     thread they run on.
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
    PC_ERR_BUSY = -8,        /* a queue is full or a scheduler is draining: try again later */
    PC_ERR_EXISTS = -9,      /* a name is taken by something else (a schema of another content) */
    PC_ERR_QUOTA = -10,      /* a tenant's byte quota cannot hold what was asked */
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
/* Module store: encoded module KV kept in memory, on disk and in Redis.      */
/* ------------------------------------------------------------------------ */

/* Where a piece's KV came from. The first three are the store's tiers, in
 * lookup order; a piece found in none of them is encoded. */
typedef enum pc_kv_source { PC_SOURCE_MEMORY = 0, PC_SOURCE_DISK, PC_SOURCE_REMOTE, PC_SOURCE_ENCODED } pc_kv_source;
#define PC_N_TIERS 3
/* "memory", "disk", "remote", "encoded". */
const char *pc_kv_source_name(pc_kv_source s);

/* Where encoded module KV is kept. The memory tier always exists; disk and
 * Redis are optional. Writes go through every tier; reads try memory, disk,
 * Redis in turn and copy a hit into the faster tiers. A failing disk or Redis
 * is a warning (through log), never a failed request. */
typedef struct pc_cache_params {
    size_t mem_bytes;         /* memory budget in bytes (LRU over entries no request is reading); 0: none */
    const char *dir;          /* disk tier: a folder holding one sub-folder per model; NULL: none */
    size_t disk_bytes;        /* disk budget in bytes (LRU); 0: none */
    const char *redis;        /* remote tier: "host:port" of a Redis server; NULL: none */
    int redis_ttl_s;          /* expiry of what this process writes to Redis; <= 0: none */
    int redis_timeout_ms;     /* connect and command timeout; <= 0: 2000 */
    const char *redis_prefix; /* namespace of the Redis keys; NULL: "pcache:" */
    /* Each tenant's share of the memory tier in bytes (its schemas' pieces and
     * prefix blocks; shared schemas count for nobody): a put over it evicts
     * that tenant's own least recently used entries, never another's, and is
     * refused (PC_ERR_QUOTA) when the tenant's pinned or in-use entries leave
     * no room. 0: no quota. pc_engine_set_tenant_quota sets one per tenant. */
    size_t tenant_quota;
    /* GPU backends: module KV kept resident in device memory (the device tier),
     * LRU over copies no request is reading, filled when a piece is encoded on
     * the GPU or first read from a host tier. Pieces that do not fit stream
     * from host memory every request. */
    size_t gpu_bytes;         /* its budget in bytes; 0: half the device memory free once the model is loaded */
    bool gpu_off;             /* no device tier: cached KV streams from host memory every request */
    /* Warnings (a corrupt entry dropped, a tier unreachable): one line each,
     * without a trailing newline. NULL: written to stderr. */
    void (*log)(void *user, const char *msg);
    void *log_user;
} pc_cache_params;

/* One stored entry, as listed without loading a model (`pcache cache`). */
typedef struct pc_cache_entry_info {
    pc_kv_source tier;        /* PC_SOURCE_DISK or PC_SOURCE_REMOTE */
    const char *where;        /* the file, or the Redis key of its manifest */
    const char *model;        /* the model fingerprint of its folder (disk) or header (Redis), hex */
    const char *key;          /* hex */
    const char *label;        /* "schema:module/sub#k"; "" when the header cannot be read */
    int32_t start, n;         /* positions */
    uint64_t bytes;
    int64_t mtime_s;          /* disk: when last written or read; Redis: 0 */
    const char *problem;      /* NULL: it checks out; else what is wrong with it */
} pc_cache_entry_info;

/* Called per entry (pointers valid during the call); return false to stop. */
typedef bool (*pc_cache_entry_fn)(void *user, const pc_cache_entry_info *e);
/* Walks every entry of the tiers p names: each model folder under p->dir and
 * the Redis keys under p->redis_prefix. Each header is read and checked;
 * verify also reads every payload and checks its checksums. */
pc_status pc_cache_scan(const pc_cache_params *p, bool verify, pc_cache_entry_fn fn, void *user, pc_error *err);
/* Removes an entry pc_cache_scan listed. */
pc_status pc_cache_remove(const pc_cache_params *p, const pc_cache_entry_info *e, pc_error *err);

/* Counters of one tier since the engine opened. */
typedef struct pc_cache_tier_stats {
    bool enabled;
    uint64_t hits, misses;          /* lookups that found / did not find a usable entry */
    uint64_t entries, bytes;        /* held now (disk: this process's view of its folder) */
    uint64_t budget;                /* bytes; 0 when none */
    uint64_t evictions;             /* entries dropped to stay within the budget */
    uint64_t checksum_failures;     /* entries dropped because a checksum did not match */
    uint64_t rejected;              /* entries dropped for another mismatch: header, size, model, version, tokens */
    uint64_t errors;                /* I/O or connection failures; the tier was skipped for that operation */
    uint64_t writes;                /* entries written */
    uint64_t bytes_read, bytes_written;
    double read_ms, write_ms;       /* time spent loading hits / writing entries */
} pc_cache_tier_stats;

typedef struct pc_cache_stats {
    pc_cache_tier_stats tier[PC_N_TIERS]; /* indexed by pc_kv_source */
    /* The device tier (GPU backends): hits and misses of lookups, writes =
     * uploads from host memory (pieces encoded on the GPU are kept without one),
     * errors = copies the device could not make. */
    pc_cache_tier_stats gpu;
} pc_cache_stats;

/* ------------------------------------------------------------------------ */
/* Engine: a loaded model with its tokenizer, thread pool and scratch.        */
/* ------------------------------------------------------------------------ */

typedef struct pc_engine pc_engine;

typedef struct pc_engine_params {
    const char *model_path;    /* GGUF file; mapped, never copied */
    int n_threads;             /* <= 0: one per online CPU */
    int n_ctx;                 /* <= 0: the model's training context */
    int n_batch;               /* tokens per prefill chunk; <= 0: 512 on the CPU, 4096 on CUDA */
    const char *chat_template; /* NULL: detect from the model; else "chatml", "llama2", "llama3", "gemma" */
    pc_cache_params cache;     /* the module store's tiers; zeroed: memory only, no budget */
    const char *backend;       /* "cpu", "cuda", or NULL / "auto": CUDA when built with it and a GPU is present */
} pc_engine_params;

pc_engine_params pc_engine_default_params(void);
/* Loads the model named by p->model_path and opens the module store
 * (fingerprinting the weights: SHA-256 of every tensor, in parallel; the disk
 * tier's index is rebuilt from its files). Free with pc_engine_free. */
pc_status pc_engine_open(const pc_engine_params *p, pc_engine **out, pc_error *err);
void pc_engine_free(pc_engine *e);

/* Model facts. */
int pc_engine_n_vocab(const pc_engine *e);
int pc_engine_n_ctx(const pc_engine *e);
size_t pc_engine_kv_bytes_per_token(const pc_engine *e);
const char *pc_engine_model_name(const pc_engine *e);
const char *pc_engine_isa(const pc_engine *e); /* SIMD path in use: "avx512vnni", "avx2", "scalar" */
const char *pc_engine_backend(const pc_engine *e); /* "cpu" or "cuda" */

/* Tokenizes text. add_special: BOS/EOS as the model's metadata says.
 * parse_special: special-token text (e.g. "<|im_start|>") becomes its token.
 * *ids is malloc'd: the caller frees it with pc_free. */
pc_status pc_engine_tokenize(const pc_engine *e, const char *text, size_t len, bool add_special, bool parse_special,
                             int32_t **ids, size_t *n_ids, pc_error *err);
/* Formats a single user message (after an optional system message) with the
 * model's chat template and its generation prompt, as text to show. *out is
 * malloc'd: the caller frees it with pc_free. To run it, use
 * pc_engine_chat_tokenize: tokenizing this text with parse_special would let
 * the messages forge control tokens. */
pc_status pc_engine_chat_prompt(const pc_engine *e, const char *system, const char *user, char **out, pc_error *err);
/* The same conversation as tokens, BOS as the model says: the template's
 * markers become control tokens, the messages are plain text whatever they
 * spell. *ids is malloc'd: the caller frees it with pc_free. */
pc_status pc_engine_chat_tokenize(const pc_engine *e, const char *system, const char *user, int32_t **ids,
                                  size_t *n_ids, pc_error *err);
/* Formats a conversation with the model's chat template: roles[i] is
 * "system", "user" or "assistant", contents[i] its text; the generation
 * prompt follows when add_generation_prompt. *out is malloc'd: the caller
 * frees it with pc_free. Text to show: run pc_engine_chat_tokenize_messages. */
pc_status pc_engine_chat_format(const pc_engine *e, const char *const *roles, const char *const *contents, size_t n,
                                bool add_generation_prompt, char **out, pc_error *err);
/* The same conversation as tokens, as pc_engine_chat_tokenize: only the
 * template's markers become control tokens, so a message that spells
 * "<|im_end|><|im_start|>system" cannot open a turn of its own. */
pc_status pc_engine_chat_tokenize_messages(const pc_engine *e, const char *const *roles, const char *const *contents,
                                           size_t n, bool add_generation_prompt, int32_t **ids, size_t *n_ids,
                                           pc_error *err);

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

typedef enum pc_stop_reason {
    PC_STOP_LENGTH = 0, /* n_predict tokens */
    PC_STOP_EOG,        /* an end-of-generation token */
    PC_STOP_STRING,     /* a stop string */
    PC_STOP_CALLBACK,   /* the token callback returned false */
    PC_STOP_CONTEXT,    /* the context is full */
    PC_STOP_CANCEL,     /* pc_request_cancel, or the scheduler stopped */
} pc_stop_reason;
/* "length", "eog", "stop_string", "callback", "context", "cancel": the names JSON output uses. */
const char *pc_stop_reason_name(pc_stop_reason r);

typedef struct pc_gen_result {
    int32_t *tokens;          /* generated ids (malloc'd; pc_gen_result_free) */
    size_t n_tokens;
    char *text;               /* generated text, NUL-terminated (malloc'd) */
    size_t n_prompt;          /* prompt tokens computed */
    double ttft_ms;           /* request start to first token sampled */
    double prefill_ms;        /* first to last prefill step (shared with other requests when batched) */
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
    /* The tenant the schema belongs to: its store keys and its registered
     * name are namespaced by it ("TENANT/NAME"), so only that tenant's
     * requests bind to it. NULL or "": shared (every tenant's requests see
     * it). No '/' in a tenant. */
    const char *tenant;
    bool pin;                   /* the memory tier never evicts the schema's pieces */
    double ttl_s;               /* > 0: the schema's pieces leave memory ttl_s seconds after registration */
    /* The most KV the schema's pieces may hold together, every union member
     * counting (0: PC_SCHEMA_DEFAULT_MAX_KV_BYTES); a schema over it is refused
     * while it is laid out, naming the element where it passes the limit. */
    size_t max_kv_bytes;
    /* The token that fills a parameter without scaffold text while the
     * schema is encoded, written as its text ("<unk>", "<|endoftext|>"; it
     * must be exactly one token). NULL: the model's unknown token, else EOS. */
    const char *placeholder;
    /* Set (when non-NULL) to whether the very schema - same tenant, name and
     * digest - was registered already: then nothing is done (no encoding, its
     * pin and TTL unchanged) and the call succeeds. */
    bool *already;
    /* pc_engine_schema_load with a remote tier (Redis): also record the PML,
     * pin and TTL in the store's shared registry, so that every process on
     * the same Redis and model serves the schema (pc_engine_schema_sync). */
    bool publish;
} pc_schema_params;

#define PC_SCHEMA_DEFAULT_MAX_KV_BYTES ((size_t)4 << 30)

/* Parses and lays out a schema file, makes its pieces' KV ready in the module
 * store - found in memory, on disk or in Redis, else encoded and stored - and
 * registers it under its name. The same schema again (same tenant, name and
 * digest) is a no-op (p->already); another of the same name and tenant is
 * PC_ERR_EXISTS. *name_out (may be NULL) receives its registered name, malloc'd:
 * NAME for a shared schema, TENANT/NAME for a tenant's; the calls below take
 * that name. Errors carry file, line and column. */
pc_status pc_engine_schema_load_file(pc_engine *e, const char *path, const pc_schema_params *p, char **name_out,
                                     pc_error *err);
/* Same from a buffer; doc_name labels errors. src= needs p->src_root. */
pc_status pc_engine_schema_load(pc_engine *e, const char *xml, size_t len, const char *doc_name,
                                const pc_schema_params *p, char **name_out, pc_error *err);
/* Unregisters a schema; requests already running keep their spans alive. A
 * published schema leaves the shared registry too (every process). */
pc_status pc_engine_schema_remove(pc_engine *e, const char *name, pc_error *err);
/* Brings one registered name (NAME or TENANT/NAME) in line with the store's
 * shared registry (a remote tier holding schemas published by any process):
 * registers it from there when only the registry has it (its pieces come from
 * the store: nothing is encoded that another process encoded), unregisters a
 * published schema the registry no longer holds (removed elsewhere, or its
 * TTL ran out), re-registers one the registry holds in another version.
 * Schemas registered here without publish are left alone, and so is
 * everything when there is no remote tier or it cannot be reached. Errors
 * only when the registry's schema cannot be registered here. Prompts
 * (pc_request_from_pml, pc_engine_run) call it for the schema they name. */
pc_status pc_engine_schema_sync(pc_engine *e, const char *name, pc_error *err);

/* The registered names of the schemas (NAME or TENANT/NAME): *names is one
 * malloc'd block holding the array and the strings (free it with pc_free). */
pc_status pc_engine_schema_list(const pc_engine *e, char ***names, size_t *n, pc_error *err);

typedef struct pc_schema_stats {
    int32_t length;             /* L: positions the schema occupies */
    int32_t n_modules, n_unions, n_params, n_pieces;
    int64_t encoded_tokens;     /* tokens its registration ran through the model: 0 when the store had every piece */
    size_t kv_bytes;            /* KV of its cached pieces */
    size_t kv_bytes_per_token;  /* 2 x layers x kv_heads x head_dim x sizeof(f16) */
    double encode_ms;           /* time in those forward passes */
    double ready_ms;            /* the whole registration: lookups, loads from disk or Redis, encoding */
    int32_t pieces_from[PC_N_TIERS + 1]; /* cached pieces by where the registration found them (pc_kv_source) */
    int32_t not_loaded;         /* pieces left in a slower tier because the memory budget is full */
} pc_schema_stats;

pc_status pc_engine_schema_stats(const pc_engine *e, const char *name, pc_schema_stats *out, pc_error *err);
/* A human-readable layout: every module and union with positions, token counts,
 * KV bytes, and the scaffold. *out is malloc'd; free with pc_free. */
pc_status pc_engine_schema_describe(const pc_engine *e, const char *name, char **out, pc_error *err);

typedef struct pc_run_params {
    pc_gen_params gen;
    bool use_cache;             /* false: plain prefill of the very same tokens at the same positions */
    bool lenient;
    /* The prompt's schema is looked up among this tenant's schemas, then the
     * shared ones; NULL or "": the shared ones only. */
    const char *tenant;
} pc_run_params;

/* A cached piece a request used, and where its KV came from. */
typedef struct pc_run_piece {
    const char *path;           /* "module/sub#k": the owner's k-th piece ("#k": the schema's own text) */
    int32_t start, n;           /* positions */
    pc_kv_source source;
} pc_run_piece;

typedef struct pc_run_result {
    pc_gen_result gen;          /* gen.ttft_ms counts from the request's start (parsing included) */
    int64_t cached_tokens;      /* reused from the cache, not computed */
    int64_t fresh_tokens;       /* computed for this request */
    double assemble_ms;         /* binding the prompt and listing the context's spans (no compute) */
    size_t kv_bytes;            /* KV memory the request allocated: none for cached tokens */
    int32_t *input_tokens;      /* the request's whole input in position order (cached and fresh), malloc'd */
    int32_t *input_pos;         /* their positions */
    size_t n_input;
    pc_run_piece *pieces;       /* cached runs: every cached piece, in position order (malloc'd, paths too) */
    size_t n_pieces;
    int64_t encoded_tokens;     /* tokens run to rebuild pieces no tier had (not counted in fresh_tokens) */
    double fetch_ms;            /* getting the cached pieces' KV from the store (encoding included) */
} pc_run_result;

/* Runs a PML prompt against its registered schema. req_name labels errors.
 * Free the result with pc_run_result_free. */
pc_status pc_engine_run(pc_engine *e, const char *prompt_xml, size_t len, const char *req_name,
                        const pc_run_params *p, pc_token_cb cb, void *user, pc_run_result *out, pc_error *err);
void pc_run_result_free(pc_run_result *r);

/* Counters of the module store's tiers. */
void pc_engine_cache_stats(pc_engine *e, pc_cache_stats *out);
/* A tenant's quota of the memory tier in bytes (pc_cache_params.tenant_quota
 * says what it is by default; 0: none). Thread-safe. */
pc_status pc_engine_set_tenant_quota(pc_engine *e, const char *tenant, size_t bytes, pc_error *err);
/* What a tenant's schemas and prefix blocks hold in the memory tier now, and its quota (0: none). */
void pc_engine_tenant_usage(pc_engine *e, const char *tenant, size_t *bytes, size_t *quota);

/* ------------------------------------------------------------------------ */
/* Requests and the scheduler: many requests in flight on one engine.         */
/* ------------------------------------------------------------------------ */

/* A request owns everything one generation needs (its KV spans, sampler,
 * logits, text) and references the cached spans it reuses. pc_engine_generate
 * and pc_engine_run run one request alone on the calling thread; a scheduler
 * runs many, batched. Either way a request's tokens are bitwise the same. */
typedef struct pc_request pc_request;

/* A plain prompt at positions 0..n-1. The pointers in p (stop strings are
 * copied; force_tokens, first_logits and the logits observer are not) must
 * stay valid until the request is done. Release with pc_request_release. */
pc_status pc_request_from_tokens(pc_engine *e, const int32_t *prompt, size_t n, const pc_gen_params *p,
                                 pc_request **out, pc_error *err);
/* Tokens per block of the automatic prefix cache. */
#define PC_PREFIX_BLOCK 64
/* A plain prompt at positions 0..n-1 through the automatic prefix cache: its
 * leading blocks of PC_PREFIX_BLOCK tokens that the module store's memory
 * tier holds for this tenant (NULL or "": the shared namespace) are reused,
 * the blocks it computes and its tail are kept there for later prompts. On
 * the CPU reuse goes to the token: the first block not held whole may still
 * share its first tokens with a kept one, whose KV for them is copied, so
 * only what follows the longest kept common prefix is computed. The output is
 * bitwise the same as pc_request_from_tokens'; the result's cached_tokens
 * counts what was reused. */
pc_status pc_request_from_prefix(pc_engine *e, const int32_t *prompt, size_t n, const pc_gen_params *p,
                                 const char *tenant, pc_request **out, pc_error *err);
/* A PML prompt bound to its registered schema; p as for pc_engine_run. The
 * request holds references to the spans it reuses, so the schema may be
 * removed while it runs. */
pc_status pc_request_from_pml(pc_engine *e, const char *xml, size_t len, const char *req_name, const pc_run_params *p,
                              pc_request **out, pc_error *err);

/* Called once when a request ends (done, failed or cancelled). result (NULL
 * when status is not PC_OK) and err are valid during the call only. */
typedef void (*pc_done_cb)(void *user, pc_status status, const pc_error *err, const pc_run_result *result);

/* Callbacks run on the thread that steps the request (the scheduler's, or the
 * caller's for pc_request_run); they must not block. Set before running. */
void pc_request_set_callbacks(pc_request *r, pc_token_cb on_text, pc_done_cb on_done, void *user);
/* Runs a request alone on the calling thread until it ends; its result is
 * passed to on_done. Returns its status. */
pc_status pc_request_run(pc_request *r, pc_error *err);
/* Any thread, any time: the request ends (PC_STOP_CANCEL) at its next step. */
void pc_request_cancel(pc_request *r);
void pc_request_release(pc_request *r); /* NULL-safe */

typedef struct pc_sched pc_sched;

typedef struct pc_sched_params {
    int32_t max_active;  /* requests prefilling or decoding at once; <= 0: 4 */
    int32_t max_queued;  /* requests waiting for a slot; one more is PC_ERR_BUSY; < 0: 64 */
    int32_t step_tokens; /* rows per step, decodes and prefill chunks together; <= 0: the engine's n_batch */
    int32_t mix_tokens;  /* prefill rows a step gives requests other than the oldest prefilling one; <= 0: 64 */
} pc_sched_params;

pc_sched_params pc_sched_default_params(void);

/* Starts the scheduler thread: it owns the forward pass of its requests.
 * Each step batches one decode row of every active request with chunks of
 * the pending prefills, admits waiting requests into free slots between
 * steps and retires ended ones. Free with pc_sched_stop. */
pc_status pc_sched_start(pc_engine *e, const pc_sched_params *p, pc_sched **out, pc_error *err);
/* Queues a prepared request (the scheduler takes its own reference).
 * PC_ERR_BUSY when the queue is full or the scheduler drains. Thread-safe. */
pc_status pc_sched_submit(pc_sched *s, pc_request *r, pc_error *err);

typedef struct pc_sched_stats {
    int32_t active, queued;
    uint64_t steps, rows;              /* batches run and the rows they held */
    uint64_t prompt_tokens, generated_tokens;
    uint64_t completed, cancelled, failed;
} pc_sched_stats;

void pc_sched_get_stats(pc_sched *s, pc_sched_stats *out); /* thread-safe */
/* Refuses new requests (PC_ERR_BUSY) and waits until every queued and active
 * request has ended, or timeout_ms has passed (<= 0: no limit). True when
 * all ended. Thread-safe; the scheduler keeps running. */
bool pc_sched_drain(pc_sched *s, double timeout_ms);
/* Cancels what is in flight (each on_done still runs) and joins the thread.
 * The scheduler stays valid for other threads (a late submit gets
 * PC_ERR_BUSY) until pc_sched_free. Idempotent. */
void pc_sched_stop(pc_sched *s);
/* Stops (if needed) and frees. NULL-safe. No other call on s may run or follow. */
void pc_sched_free(pc_sched *s);

/* ------------------------------------------------------------------------ */
/* Server: OpenAI-compatible HTTP on top of an engine and a scheduler.       */
/* ------------------------------------------------------------------------ */

/* An API key and the tenant it stands for. A tenant's schemas and cache
 * entries are its own; can_share lets a key register schemas every tenant
 * sees. */
typedef struct pc_api_key {
    const char *key;
    const char *tenant;
    bool can_share;
    size_t quota;             /* bytes of the memory tier its tenant may hold (0: the server's default) */
} pc_api_key;

/* Reads a key file: one "KEY TENANT [share] [quota=BYTES]" per line (BYTES
 * as 4096, 64K, 512M, 2G), '#' starts a comment.
 * Free the array with pc_api_keys_free. Errors name the file and line. */
pc_status pc_api_keys_load(const char *path, pc_api_key **keys, size_t *n, pc_error *err);
void pc_api_keys_free(pc_api_key *keys, size_t n);

typedef struct pc_server_params {
    const char *host;         /* address to listen on; NULL: "127.0.0.1" */
    int port;                 /* 0: any free port (see pc_server_port) */
    int parallel;             /* requests generating at once; <= 0: 4 */
    int max_queued;           /* requests waiting beyond those; one more gets 503 + Retry-After; < 0: 64 */
    int step_tokens;          /* rows per batch step; <= 0: the engine's n_batch */
    int mix_tokens;           /* prefill rows a step gives newer requests beside the oldest one's; <= 0: 64 */
    size_t max_body_bytes;    /* larger bodies get 413; 0: 16 MiB */
    int idle_timeout_s;       /* a connection idle this long is closed; <= 0: 600 */
    int upload_timeout_s;     /* a body not whole within this gets 408; <= 0: 30 */
    int max_connections;      /* <= 0: 256 */
    double drain_timeout_s;   /* pc_server_stop waits this long for requests in flight; <= 0: 60 */
    const pc_api_key *keys;   /* n_keys == 0: no authentication, one tenant ("") */
    size_t n_keys;
    const char *model_alias;  /* the model id clients name; NULL: the model's name */
    bool prefix_cache;        /* plain prompts through the automatic prefix cache (pc_request_from_prefix) */
    size_t tenant_quota;      /* each key's tenant's share of the memory tier unless its key says (0: none) */
} pc_server_params;

pc_server_params pc_server_default_params(void);

typedef struct pc_server pc_server;

/* Starts the scheduler and the HTTP listener (libmicrohttpd, a thread per
 * connection). The engine must outlive the server. */
pc_status pc_server_start(pc_engine *e, const pc_server_params *p, pc_server **out, pc_error *err);
/* The port it listens on. */
int pc_server_port(const pc_server *s);
/* Graceful stop: refuses new connections and requests (503), lets requests
 * in flight finish (up to drain_timeout_s, then cancels them), closes every
 * connection, frees. NULL-safe. */
void pc_server_stop(pc_server *s);

#ifdef __cplusplus
}
#endif
#endif /* PCACHE_H */
