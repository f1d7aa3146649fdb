/* test_gpu_tier.c - module KV resident in GPU memory through the engine
 * (the store's device tier on the CUDA backend), counted by the tier's own
 * statistics:
 *  1. A schema encoded on the GPU is kept there without an upload; a prompt
 *     over it reads every cached piece in place (hits, zero uploads), and its
 *     greedy tokens equal the uncached run's (cuBLAS sums depend on the row
 *     count, so logits are close, not bitwise: their relative L2 is printed).
 *  2. The same schema read back from the disk tier by a second engine is
 *     uploaded once, at registration; two prompts later, still one upload
 *     per piece; the answer is the first engine's.
 *  3. A budget smaller than the schema: resident bytes stay within it,
 *     pieces that do not fit stream from host memory, the answer is the same;
 *     a second schema then evicts the first one's copies no request holds,
 *     and the first prompt, uploaded again, still gives the same answer.
 *  4. --no-cache-gpu (gpu_off): no device tier, the same answer streamed.
 *  5. The prefix cache of plain prompts on the GPU: a first request computes
 *     its blocks in device memory and the store keeps them (a pinned host
 *     copy, the device span adopted: no upload); a second request sharing the
 *     prefix reuses every full block (cached_tokens), reads them in place
 *     (device-tier hits, still no upload) and gives the first one's greedy
 *     tokens.
 * Needs a GPU (skips with a line without one) and a model: PC_TEST_GPU_MODEL,
 * else the default model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../store/store_testlib.h"
#include "backend/backend.h"

#define N_GEN 8

static const char *SCHEMA =
    "<schema name=\"docs\"><module name=\"rhine\">The Rhine rises in the Swiss Alps and flows north through Germany "
    "and the Netherlands into the North Sea. Its valley holds castles, vineyards and old towns along the banks.</module>"
    "<module name=\"etna\">Mount Etna, on the east coast of Sicily, is one of the most active volcanoes in the world, "
    "and its slopes carry orchards and forests below the snow.</module>"
    "<module name=\"alps\">The Alps stretch across eight countries, from France to Slovenia, and their glaciers feed "
    "the great rivers of the continent.</module></schema>";
static const char *PROMPT = "<prompt schema=\"docs\"><rhine/><etna/><alps/> Where does the Rhine rise, and why?</prompt>";
static const char *OTHER =
    "<schema name=\"other\"><module name=\"sea\">The Baltic Sea is brackish: rivers pour fresh water into it and "
    "only narrow straits join it to the ocean, so its water is far less salty than the Atlantic.</module></schema>";

typedef struct answer {
    int32_t tokens[N_GEN];
    float *logits;
    int64_t encoded;
    size_t n_pieces;
} answer;

static const char *model_path(void) {
    const char *m = getenv("PC_TEST_GPU_MODEL");
    return m && *m ? m : PC_MODEL_PATH;
}

static pc_engine *open_gpu(const pc_cache_params *c) {
    pc_engine_params p = pc_engine_default_params();
    p.model_path = model_path();
    p.backend = "cuda";
    p.n_ctx = 1024;
    p.cache = *c;
    pc_engine *e = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_engine_open(&p, &e, &err) == PC_OK, "%s", err.msg);
    return e;
}

static void load_xml(pc_engine *e, const char *xml) {
    pc_schema_params sp = {0};
    char *name = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_engine_schema_load(e, xml, strlen(xml), "schema.xml", &sp, &name, &err) == PC_OK, "%s", err.msg);
    free(name);
}

static void load(pc_engine *e) { load_xml(e, SCHEMA); }

static answer run(pc_engine *e, bool cache, int n_vocab) {
    answer a = {.logits = calloc((size_t)n_vocab, sizeof(float))};
    pc_run_params rp = {.gen = pc_gen_default_params(), .use_cache = cache};
    rp.gen.temp = 0;
    rp.gen.n_predict = N_GEN;
    rp.gen.ignore_eos = true;
    rp.gen.first_logits = a.logits;
    pc_run_result r = {0};
    pc_error err = {0};
    CHECK_MSG(pc_engine_run(e, PROMPT, strlen(PROMPT), "prompt", &rp, NULL, NULL, &r, &err) == PC_OK, "%s", err.msg);
    memcpy(a.tokens, r.gen.tokens, sizeof a.tokens);
    a.encoded = r.encoded_tokens;
    a.n_pieces = r.n_pieces;
    pc_run_result_free(&r);
    return a;
}

static pc_cache_tier_stats gpu(pc_engine *e) {
    pc_cache_stats st;
    pc_engine_cache_stats(e, &st);
    return st.gpu;
}

static double rel_l2(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : 0;
}

static bool same_tokens(const answer *a, const answer *b) { return memcmp(a->tokens, b->tokens, sizeof a->tokens) == 0; }

typedef struct prefix_outcome {
    int32_t tokens[N_GEN];
    int64_t cached;
    int done;
} prefix_outcome;

static void prefix_done(void *user, pc_status status, const pc_error *err, const pc_run_result *r) {
    prefix_outcome *o = user;
    o->done++;
    CHECK_MSG(status == PC_OK, "prefix request: %s", err ? err->msg : "?");
    if (status != PC_OK) return;
    CHECK(r->gen.n_tokens == N_GEN);
    memcpy(o->tokens, r->gen.tokens, sizeof o->tokens);
    o->cached = r->cached_tokens;
}

/* A plain prompt through the prefix cache; n: its first n tokens. */
static prefix_outcome run_prefix(pc_engine *e, const int32_t *ids, size_t n) {
    prefix_outcome o = {0};
    pc_gen_params g = pc_gen_default_params();
    g.n_predict = N_GEN;
    g.temp = 0;
    g.ignore_eos = true;
    pc_request *r = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_request_from_prefix(e, ids, n, &g, NULL, &r, &err) == PC_OK, "%s", err.msg);
    if (!r) return o;
    pc_request_set_callbacks(r, NULL, prefix_done, &o);
    CHECK_MSG(pc_request_run(r, &err) == PC_OK, "%s", err.msg);
    pc_request_release(r);
    CHECK(o.done == 1);
    return o;
}

static void check_prefix_blocks(const pc_cache_params *c) {
    pc_engine *e = open_gpu(c);
    if (!e) return;
    char text[4096] = "";
    for (int i = 0; strlen(text) < 2000; i++) {
        char line[128];
        snprintf(line, sizeof line, "Rule %d: answer briefly, cite the rule, and never guess. ", i);
        strcat(text, line);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    pc_error err = {0};
    CHECK_MSG(pc_engine_tokenize(e, text, strlen(text), true, true, &ids, &n, &err) == PC_OK, "%s", err.msg);
    CHECK(n > 3 * PC_PREFIX_BLOCK + 8);
    if (n > 5 * PC_PREFIX_BLOCK) n = 5 * PC_PREFIX_BLOCK + 10;
    const int64_t blocks = (int64_t)(n - 1) / PC_PREFIX_BLOCK;
    const pc_cache_tier_stats g0 = gpu(e);
    const prefix_outcome cold = run_prefix(e, ids, n);
    const pc_cache_tier_stats g1 = gpu(e);
    const prefix_outcome warm = run_prefix(e, ids, n);
    const pc_cache_tier_stats g2 = gpu(e);
    CHECK_MSG(cold.cached == 0 && warm.cached == blocks * PC_PREFIX_BLOCK, "cached tokens: cold %lld, warm %lld (%lld blocks)",
              (long long)cold.cached, (long long)warm.cached, (long long)blocks);
    CHECK_MSG(g1.entries >= g0.entries + (uint64_t)blocks && g1.writes == g0.writes,
              "cold: %llu device copies kept, %llu uploads", (unsigned long long)(g1.entries - g0.entries),
              (unsigned long long)(g1.writes - g0.writes));
    CHECK_MSG(g2.hits >= g1.hits + (uint64_t)blocks && g2.writes == g1.writes, "warm: %llu device hits, %llu uploads",
              (unsigned long long)(g2.hits - g1.hits), (unsigned long long)(g2.writes - g1.writes));
    CHECK(!memcmp(cold.tokens, warm.tokens, sizeof cold.tokens));
    printf("prefix cache on the GPU: %zu tokens, warm request reused %lld (%lld blocks, %llu device hits, %llu uploads), "
           "greedy %s\n", n, (long long)warm.cached, (long long)blocks, (unsigned long long)(g2.hits - g1.hits),
           (unsigned long long)(g2.writes - g0.writes), memcmp(cold.tokens, warm.tokens, sizeof cold.tokens) ? "DIFFERENT" : "identical");
    free(ids);
    pc_engine_free(e);
}

int main(void) {
    char why[256];
    if (!pc_backend_cuda_available(why, sizeof why)) {
        printf("skipped: %s\n", why);
        return CHECK_SKIP;
    }
    if (access(model_path(), R_OK) != 0) {
        printf("skipped: model %s absent (PC_TEST_GPU_MODEL names one)\n", model_path());
        return CHECK_SKIP;
    }
    char dir[64];
    CHECK(t_tmpdir(dir, sizeof dir) != NULL);
    const pc_cache_params disk = {.dir = dir};

    /* 1. encoded on the GPU, read in place */
    pc_engine *e = open_gpu(&disk);
    if (!e) return check_report();
    const int V = pc_engine_n_vocab(e);
    load(e);
    pc_cache_tier_stats g0 = gpu(e);
    CHECK_MSG(g0.enabled && g0.entries >= 3 && g0.writes == 0, "after encoding: %llu pieces, %llu uploads",
              (unsigned long long)g0.entries, (unsigned long long)g0.writes);
    answer cached = run(e, true, V);
    pc_cache_tier_stats g1 = gpu(e);
    CHECK(cached.encoded == 0 && cached.n_pieces >= 3);
    CHECK_MSG(g1.writes == 0 && g1.hits >= g0.hits + cached.n_pieces, "prompt: %llu uploads, %llu hits (%zu pieces)",
              (unsigned long long)g1.writes, (unsigned long long)(g1.hits - g0.hits), cached.n_pieces);
    answer plain = run(e, false, V);
    CHECK(same_tokens(&cached, &plain));
    printf("encoded on the GPU: %llu pieces resident, %llu hits, %llu uploads; cached vs uncached: greedy %s, "
           "first logits relative L2 %.4f\n",
           (unsigned long long)g1.entries, (unsigned long long)(g1.hits - g0.hits), (unsigned long long)g1.writes,
           same_tokens(&cached, &plain) ? "identical" : "DIFFERENT", rel_l2(cached.logits, plain.logits, V));
    answer again = run(e, true, V);
    CHECK(same_tokens(&again, &cached) && memcmp(again.logits, cached.logits, (size_t)V * sizeof(float)) == 0);
    pc_engine_free(e);

    /* 2. from disk: one upload per piece, then hits only */
    e = open_gpu(&disk);
    load(e);
    const pc_cache_tier_stats u0 = gpu(e);
    answer from_disk = run(e, true, V);
    answer from_disk2 = run(e, true, V);
    const pc_cache_tier_stats u1 = gpu(e);
    CHECK(from_disk.encoded == 0);
    CHECK_MSG(u0.writes == u0.entries && u0.writes >= 3 && u1.writes == u0.writes, "uploads %llu at load, %llu after",
              (unsigned long long)u0.writes, (unsigned long long)u1.writes);
    CHECK(same_tokens(&from_disk, &cached) && same_tokens(&from_disk2, &cached));
    printf("from disk: %llu uploads at registration, %llu after two prompts; answer %s\n",
           (unsigned long long)u0.writes, (unsigned long long)u1.writes,
           same_tokens(&from_disk, &cached) ? "identical" : "DIFFERENT");
    const uint64_t piece_bytes = u0.bytes / (u0.entries ? u0.entries : 1);
    pc_engine_free(e);

    /* 3. a budget for about one piece */
    pc_cache_params small = disk;
    small.gpu_bytes = piece_bytes + piece_bytes / 2;
    e = open_gpu(&small);
    load(e);
    answer tight = run(e, true, V);
    answer tight2 = run(e, true, V);
    const pc_cache_tier_stats s1 = gpu(e);
    CHECK_MSG(s1.bytes <= s1.budget && s1.entries < cached.n_pieces, "%llu of %llu bytes, %llu pieces",
              (unsigned long long)s1.bytes, (unsigned long long)s1.budget, (unsigned long long)s1.entries);
    CHECK(same_tokens(&tight, &cached) && same_tokens(&tight2, &cached));
    load_xml(e, OTHER); /* encoded on the GPU: its copy needs room, and nothing holds docs' copies now */
    const pc_cache_tier_stats s2 = gpu(e);
    answer tight3 = run(e, true, V);
    const pc_cache_tier_stats s3 = gpu(e);
    CHECK_MSG(s2.evictions > s1.evictions && s2.bytes <= s2.budget, "%llu evictions, %llu of %llu bytes",
              (unsigned long long)s2.evictions, (unsigned long long)s2.bytes, (unsigned long long)s2.budget);
    CHECK(s3.writes > s2.writes && s3.bytes <= s3.budget && same_tokens(&tight3, &cached));
    printf("budget %llu bytes: %llu of %zu pieces resident, %llu uploads, answer %s; a second schema evicted %llu, "
           "the prompt again: %llu uploads, answer %s\n",
           (unsigned long long)s1.budget, (unsigned long long)s1.entries, cached.n_pieces, (unsigned long long)s1.writes,
           same_tokens(&tight, &cached) ? "identical" : "DIFFERENT", (unsigned long long)(s2.evictions - s1.evictions),
           (unsigned long long)(s3.writes - s2.writes), same_tokens(&tight3, &cached) ? "identical" : "DIFFERENT");
    free(tight3.logits);
    pc_engine_free(e);

    /* 4. no device tier: streamed from host memory */
    pc_cache_params off = disk;
    off.gpu_off = true;
    e = open_gpu(&off);
    load(e);
    answer streamed = run(e, true, V);
    CHECK(!gpu(e).enabled && same_tokens(&streamed, &cached));
    printf("no device tier: answer %s, first logits relative L2 to the resident run %.2g\n",
           same_tokens(&streamed, &cached) ? "identical" : "DIFFERENT", rel_l2(streamed.logits, cached.logits, V));
    pc_engine_free(e);

    check_prefix_blocks(&disk);

    answer *all[] = {&cached, &plain, &again, &from_disk, &from_disk2, &tight, &tight2, &streamed};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]->logits);
    t_rmtree(dir);
    return check_report();
}
