/* test_store_engine.c - the module store under real requests on the default model.
 *
 *  1. Restart: a first process (this binary, re-executed) registers schemas
 *     with a disk tier and runs prompts cached; a second process registers
 *     them encoding zero tokens (every piece from disk), runs the same prompts
 *     encoding zero tokens, and gets bit-identical first-token logits and
 *     answers: to the first process's cached runs, and - for a prompt that
 *     imports exactly the scaffold - to its own plain prefill. Both processes
 *     derive the same model fingerprint.
 *  2. Damage between the processes: a flipped byte in one stored piece makes
 *     the second process encode that piece (and only it) afresh, with a log
 *     line saying why; the answers stay bit-identical.
 *  3. Budgets: a memory budget smaller than the schema still serves requests,
 *     from disk when there is one, else by encoding the evicted pieces again,
 *     with the same logits; each result says where each piece came from.
 *  4. Tenants: the same schema under another tenant shares nothing.
 *  5. Redis: a schema encoded by one process is served to another from Redis
 *     with zero tokens encoded (skipped, with a line, without Redis); with
 *     Redis unreachable, registration and requests still succeed, with one
 *     warning.
 * Skips when the model is absent. */
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "docs_trip_schemas.h"
#include "engine/engine_internal.h"
#include "schema/schema.h"
#include "util/sha256.h"
#include "../store/redis_fixture.h"

extern char **environ;

/* not the scaffold: a non-scaffold union member and an argument */
static const char *TRIP_P = "<prompt schema=\"trip\"><plan days=\"a week\"><abroad/></plan><clock/><after/>"
                            "<user>What should I do?</user></prompt>";

#define N_GEN 8

/* What a process saw for one prompt. */
typedef struct outcome {
    int32_t tokens[N_GEN];
    int64_t encoded;
    float logits[]; /* [n_vocab] */
} outcome;

static pc_engine *open_engine(const pc_cache_params *cache, pc_error *err) {
    pc_engine_params p = pc_engine_default_params();
    p.model_path = PC_MODEL_PATH;
    p.n_ctx = 1024;
    p.cache = *cache;
    pc_engine *e = NULL;
    return pc_engine_open(&p, &e, err) == PC_OK ? e : NULL;
}

static pc_status load(pc_engine *e, const char *xml, const char *tenant, pc_schema_stats *st, pc_error *err) {
    pc_schema_params sp = {.tenant = tenant};
    char *name = NULL;
    pc_status s = pc_engine_schema_load(e, xml, strlen(xml), "schema.xml", &sp, &name, err);
    if (s == PC_OK && st) s = pc_engine_schema_stats(e, name, st, err);
    free(name);
    return s;
}

static pc_status run(pc_engine *e, const char *xml, bool cache, outcome *o, pc_run_result *r, pc_error *err) {
    pc_run_params rp = {.gen = pc_gen_default_params(), .use_cache = cache};
    rp.gen.temp = 0;
    rp.gen.n_predict = N_GEN;
    rp.gen.ignore_eos = true;
    rp.gen.first_logits = o->logits;
    pc_status s = pc_engine_run(e, xml, strlen(xml), "request", &rp, NULL, NULL, r, err);
    if (s == PC_OK) {
        memcpy(o->tokens, r->gen.tokens, sizeof o->tokens);
        o->encoded = r->encoded_tokens;
    }
    return s;
}

static outcome *new_outcome(int n_vocab) { return calloc(1, sizeof(outcome) + (size_t)n_vocab * sizeof(float)); }

static bool same(const outcome *a, const outcome *b, int n_vocab) {
    return memcmp(a->tokens, b->tokens, sizeof a->tokens) == 0 &&
           memcmp(a->logits, b->logits, (size_t)n_vocab * sizeof(float)) == 0;
}

/* ---------------- the first process ---------------- */

/* Registers both schemas into dir (or Redis at addr), runs both prompts cached,
 * writes the outcomes and the model fingerprint to out. */
static int first_process(const char *dir, const char *redis, const char *prefix, const char *out) {
    pc_cache_params c = {.dir = *dir ? dir : NULL, .redis = *redis ? redis : NULL, .redis_prefix = prefix};
    pc_error err = {0};
    pc_engine *e = open_engine(&c, &err);
    if (!e) return fprintf(stderr, "first process: %s\n", err.msg), 1;
    const int V = pc_engine_n_vocab(e);
    outcome *a = new_outcome(V), *b = new_outcome(V);
    pc_run_result ra = {0}, rb = {0};
    int rc = load(e, DOCS, NULL, NULL, &err) || load(e, TRIP, NULL, NULL, &err) || run(e, DOCS_P, true, a, &ra, &err) ||
             run(e, TRIP_P, true, b, &rb, &err);
    FILE *f = rc ? NULL : fopen(out, "wb");
    if (f) {
        fwrite(e->model_digest, 1, 32, f);
        fwrite(a, 1, sizeof *a + (size_t)V * sizeof(float), f);
        fwrite(b, 1, sizeof *b + (size_t)V * sizeof(float), f);
        rc = fclose(f) != 0;
    } else {
        rc = 1;
        fprintf(stderr, "first process: %s\n", err.msg);
    }
    pc_run_result_free(&ra);
    pc_run_result_free(&rb);
    free(a);
    free(b);
    pc_engine_free(e);
    return rc;
}

static const char *SELF;

/* Runs the first process; reads back what it wrote. */
static int spawn_first(const char *dir, const char *redis, const char *prefix, int V, uint8_t digest[32], outcome *a,
                       outcome *b) {
    char out[] = "/tmp/pcache-first-XXXXXX";
    int fd = mkstemp(out);
    if (fd < 0) return -1;
    close(fd);
    char *argv[] = {(char *)SELF, "--first", (char *)dir, (char *)redis, (char *)prefix, out, NULL};
    pid_t pid;
    int status = 0;
    if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ) != 0 || waitpid(pid, &status, 0) != pid ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        unlink(out);
        return -1;
    }
    FILE *f = fopen(out, "rb");
    size_t sz = sizeof *a + (size_t)V * sizeof(float);
    int ok = f && fread(digest, 1, 32, f) == 32 && fread(a, 1, sz, f) == sz && fread(b, 1, sz, f) == sz;
    if (f) fclose(f);
    unlink(out);
    return ok ? 0 : -1;
}

/* ---------------- the second process (this one) ---------------- */

typedef struct logbuf {
    int lines;
    char all[8192];
} logbuf;

static void log_line(void *user, const char *msg) {
    logbuf *L = user;
    L->lines++;
    size_t n = strlen(L->all);
    snprintf(L->all + n, sizeof L->all - n, "%s\n", msg);
}

static int count_sources(const pc_run_result *r, pc_kv_source s) {
    int n = 0;
    for (size_t i = 0; i < r->n_pieces; i++) n += r->pieces[i].source == s;
    return n;
}

static void check_restart(void) {
    char dir[] = "/tmp/pcache-restart-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    pc_error err = {0};
    logbuf L = {0};
    pc_cache_params c = {.dir = dir, .log = log_line, .log_user = &L};
    pc_engine *e = open_engine(&c, &err);
    CHECK_MSG(e != NULL, "%s", err.msg);
    if (!e) return;
    const int V = pc_engine_n_vocab(e);
    outcome *a1 = new_outcome(V), *b1 = new_outcome(V), *a2 = new_outcome(V), *b2 = new_outcome(V),
            *plain = new_outcome(V);
    uint8_t digest[32];
    /* the engine above opened an empty folder; the first process fills it */
    CHECK_MSG(spawn_first(dir, "", "", V, digest, a1, b1) == 0, "the first process failed");
    CHECK_MSG(memcmp(digest, e->model_digest, 32) == 0, "two processes fingerprint the model differently");
    pc_engine_free(e);
    e = open_engine(&c, &err); /* the restart */
    pc_schema_stats st;
    CHECK_MSG(load(e, DOCS, NULL, &st, &err) == PC_OK, "%s", err.msg);
    CHECK_EQ_INT(st.encoded_tokens, 0);
    CHECK(st.pieces_from[PC_SOURCE_DISK] > 0 && st.pieces_from[PC_SOURCE_ENCODED] == 0);
    CHECK_MSG(load(e, TRIP, NULL, &st, &err) == PC_OK, "%s", err.msg);
    CHECK_EQ_INT(st.encoded_tokens, 0);
    pc_run_result r = {0}, rp = {0};
    CHECK_MSG(run(e, DOCS_P, true, a2, &r, &err) == PC_OK, "%s", err.msg);
    CHECK_EQ_INT(a2->encoded, 0);
    CHECK(r.n_pieces > 0 && count_sources(&r, PC_SOURCE_MEMORY) == (int)r.n_pieces); /* loaded at registration */
    CHECK_MSG(same(a1, a2, V), "docs: the restarted process's cached answer differs from the first process's");
    CHECK_MSG(run(e, DOCS_P, false, plain, &rp, &err) == PC_OK, "%s", err.msg);
    CHECK_MSG(same(a2, plain, V), "docs: cached after a restart differs from the plain prefill");
    pc_run_result_free(&r);
    pc_run_result_free(&rp);
    CHECK_MSG(run(e, TRIP_P, true, b2, &r, &err) == PC_OK, "%s", err.msg);
    CHECK_EQ_INT(b2->encoded, 0);
    CHECK_MSG(same(b1, b2, V), "trip: the restarted process's cached answer differs from the first process's");
    pc_run_result_free(&r);
    CHECK_EQ_INT(L.lines, 0);
    pc_engine_free(e);

    /* damage: one piece's file flipped; that piece alone is encoded again, same answers */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "f=$(ls -S %s/*/*.kv | head -1); printf '\\x55' | dd of=$f bs=1 seek=$(( $(stat -c %%s $f) - 7 )) conv=notrunc status=none", dir);
    CHECK(system(cmd) == 0);
    L.lines = 0;
    L.all[0] = '\0';
    e = open_engine(&c, &err);
    CHECK_MSG(load(e, DOCS, NULL, &st, &err) == PC_OK, "%s", err.msg);
    CHECK_MSG(load(e, TRIP, NULL, &st, &err) == PC_OK, "%s", err.msg);
    pc_cache_stats cs;
    pc_engine_cache_stats(e, &cs);
    CHECK_EQ_INT(cs.tier[PC_SOURCE_DISK].checksum_failures, 1);
    CHECK_MSG(strstr(L.all, "payload checksum mismatch") && strstr(L.all, "encoded afresh"), "log: %s", L.all);
    const pc_schema *sd = pc_engine_find_schema(e, "docs"), *strip = pc_engine_find_schema(e, "trip");
    int64_t re = sd->ready.encoded_tokens + strip->ready.encoded_tokens, biggest = 0;
    for (int32_t i = 0; i < sd->n_pieces; i++) biggest = sd->pieces[i].n > biggest ? sd->pieces[i].n : biggest;
    for (int32_t i = 0; i < strip->n_pieces; i++) biggest = strip->pieces[i].n > biggest ? strip->pieces[i].n : biggest;
    CHECK_MSG(re > 0 && re <= biggest, "re-encoded %lld tokens for one damaged piece", (long long)re);
    CHECK(run(e, DOCS_P, true, a2, &r, &err) == PC_OK && same(a1, a2, V));
    pc_run_result_free(&r);
    CHECK(run(e, TRIP_P, true, b2, &r, &err) == PC_OK && same(b1, b2, V));
    pc_run_result_free(&r);
    pc_engine_free(e);
    free(a1), free(b1), free(a2), free(b2), free(plain);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* ---------------- budgets and tenants ---------------- */

static void check_budget(const char *dir, const outcome *ref, int V) {
    pc_error err = {0};
    pc_cache_params c = {.mem_bytes = 1, .dir = dir}; /* smaller than any piece */
    pc_engine *e = open_engine(&c, &err);
    CHECK_MSG(e != NULL, "%s", err.msg);
    if (!e) return;
    pc_schema_stats st;
    CHECK_MSG(load(e, DOCS, NULL, &st, &err) == PC_OK, "%s", err.msg);
    CHECK(st.not_loaded > 0 || st.encoded_tokens > 0);
    outcome *o = new_outcome(V);
    pc_run_result r = {0};
    for (int round = 0; round < 2; round++) {
        CHECK_MSG(run(e, DOCS_P, true, o, &r, &err) == PC_OK, "%s", err.msg);
        CHECK_MSG(same(ref, o, V), "budgeted run %d differs", round);
        CHECK_MSG(dir ? o->encoded == 0 && count_sources(&r, PC_SOURCE_DISK) == (int)r.n_pieces
                      : o->encoded > 0 && count_sources(&r, PC_SOURCE_ENCODED) == (int)r.n_pieces,
                  "%s: encoded %lld, %zu pieces, from disk %d, encoded %d", dir ? "with disk" : "memory only",
                  (long long)o->encoded, r.n_pieces, count_sources(&r, PC_SOURCE_DISK),
                  count_sources(&r, PC_SOURCE_ENCODED));
        pc_run_result_free(&r);
    }
    pc_cache_stats cs;
    pc_engine_cache_stats(e, &cs);
    CHECK(cs.tier[0].evictions > 0 && cs.tier[0].bytes == 0 && cs.tier[0].entries == 0);
    free(o);
    pc_engine_free(e);
}

static void check_budgets_and_tenants(void) {
    char dir[] = "/tmp/pcache-budget-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    pc_error err = {0};
    pc_cache_params c = {.dir = dir};
    pc_engine *e = open_engine(&c, &err);
    CHECK_MSG(e != NULL, "%s", err.msg);
    if (!e) return;
    const int V = pc_engine_n_vocab(e);
    outcome *ref = new_outcome(V);
    pc_run_result r = {0};
    pc_schema_stats st;
    CHECK(load(e, DOCS, NULL, &st, &err) == PC_OK && st.encoded_tokens > 0);
    CHECK(run(e, DOCS_P, true, ref, &r, &err) == PC_OK);
    pc_run_result_free(&r);
    pc_engine_free(e);
    check_budget(dir, ref, V);
    check_budget(NULL, ref, V);
    /* another tenant: the same schema shares no entry with the shared one */
    e = open_engine(&c, &err);
    CHECK(load(e, DOCS, "tenant-b", &st, &err) == PC_OK);
    CHECK_MSG(st.encoded_tokens == st.length, "tenant-b encoded %lld of %d tokens", (long long)st.encoded_tokens, st.length);
    pc_engine_free(e);
    free(ref);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* ---------------- Redis ---------------- */

static void check_redis(void) {
    redis_fixture rf;
    if (redis_fixture_start(&rf) != 0) {
        printf("Redis part skipped: %s\n", rf.why);
        return;
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "pctest-engine:%d:", (int)getpid());
    pc_error err = {0};
    pc_cache_params c = {.redis = rf.addr, .redis_prefix = prefix};
    pc_engine *e = open_engine(&c, &err);
    CHECK_MSG(e != NULL, "%s", err.msg);
    if (!e) return;
    const int V = pc_engine_n_vocab(e);
    outcome *a1 = new_outcome(V), *b1 = new_outcome(V), *a2 = new_outcome(V);
    uint8_t digest[32];
    CHECK_MSG(spawn_first("", rf.addr, prefix, V, digest, a1, b1) == 0, "the first process failed");
    pc_schema_stats st;
    CHECK_MSG(load(e, DOCS, NULL, &st, &err) == PC_OK, "%s", err.msg);
    CHECK_EQ_INT(st.encoded_tokens, 0);
    CHECK(st.pieces_from[PC_SOURCE_REMOTE] > 0 && st.pieces_from[PC_SOURCE_ENCODED] == 0);
    pc_run_result r = {0};
    CHECK(run(e, DOCS_P, true, a2, &r, &err) == PC_OK);
    CHECK_EQ_INT(a2->encoded, 0);
    CHECK_MSG(same(a1, a2, V), "served from Redis, the answer differs from the writer's");
    pc_run_result_free(&r);
    pc_engine_free(e);
    free(a1), free(b1), free(a2);
    redis_fixture_clear(&rf, prefix);
    redis_fixture_stop(&rf);
}

static void check_redis_down(void) {
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", rf_free_port()); /* nobody listens there */
    logbuf L = {0};
    pc_cache_params c = {.redis = addr, .redis_timeout_ms = 300, .log = log_line, .log_user = &L};
    pc_error err = {0};
    pc_engine *e = open_engine(&c, &err);
    CHECK_MSG(e != NULL, "%s", err.msg);
    if (!e) return;
    pc_schema_stats st;
    CHECK_MSG(load(e, DOCS, NULL, &st, &err) == PC_OK, "Redis down failed the registration: %s", err.msg);
    CHECK(st.encoded_tokens == st.length);
    outcome *o = new_outcome(pc_engine_n_vocab(e));
    pc_run_result r = {0};
    CHECK_MSG(run(e, DOCS_P, true, o, &r, &err) == PC_OK, "Redis down failed the request: %s", err.msg);
    CHECK(o->encoded == 0 && count_sources(&r, PC_SOURCE_MEMORY) == (int)r.n_pieces);
    CHECK_MSG(L.lines == 1 && strstr(L.all, addr), "%d warnings: %s", L.lines, L.all);
    pc_run_result_free(&r);
    free(o);
    pc_engine_free(e);
}

int main(int argc, char **argv) {
    SELF = argv[0];
    if (argc == 6 && strcmp(argv[1], "--first") == 0) return first_process(argv[2], argv[3], argv[4], argv[5]);
    if (access(PC_MODEL_PATH, R_OK) != 0) {
        printf("model %s absent: skipped\n", PC_MODEL_PATH);
        return CHECK_SKIP;
    }
    check_restart();
    check_budgets_and_tenants();
    check_redis();
    check_redis_down();
    return check_report();
}
