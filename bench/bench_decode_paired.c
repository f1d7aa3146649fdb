/* bench_decode_paired.c - decode's share of the memory limit, each window of k
 * tokens paired with streaming reads right before and right after it.
 *
 * Not a test: a tool, built with the project as build/bench_decode_paired.
 *   bench_decode_paired -m MODEL --prompt-file F --bytes N [-t THREADS] [-n TOKENS] [-k K] [-c CTX]
 *                       [--reads R] [--settle-ms MS] [--no-quiet] [--held-spread S]
 * Opens the engine through the public API, prefills the prompt (tokenized as
 * `pcache generate` does), and decodes TOKENS tokens greedily (EOS ignored).
 * Every K tokens it pauses inside the engine's per-token logits observer and
 * runs R one-pass reads of N bytes (membw_read.c, the read bench_membw times)
 * with THREADS threads; their median is the bandwidth of that moment. Each
 * window of K tokens is timed alone (the pause excluded) and set against the
 * mean of the reads on both sides: share = tok/s x N / bandwidth. A window
 * holds when the two reads agree within S (bench_engine.py's HELD_SPREAD) and
 * both ran on a quiet process (below). Prints one JSON line: every window,
 * every pause, and the median share of the windows that held.
 *
 * Why a window and not a whole run: this host's read bandwidth jumps between
 * levels from minute to minute; a 128-token run paired with reads before and
 * after it cannot see a jump inside it, a 16-token window mostly can.
 *
 * How each care point is handled:
 * - Spinning workers. The engine's pool threads (and this tool's read pool)
 *   spin for a while after a job before they sleep (threadpool.c). A read
 *   sharing the cores with spinning workers would measure a lower bandwidth
 *   and inflate the share; a window starting while the read pool spins would
 *   be slowed. So before and after every read the tool polls
 *   /proc/self/task/<tid>/stat until no thread but the caller is running (state
 *   R), up to 500 ms (a pause that never got quiet is marked and its windows do
 *   not hold). --settle-ms adds a fixed sleep after that (to check that the
 *   read does not depend on the wait); --no-quiet skips the poll (to see what
 *   the spinning costs).
 * - The first token after a pause starts with sleeping workers and caches full
 *   of the read's buffer: that window is slower than steady decode
 *   (conservative). Every window reports its first token's time beside the
 *   mean of its others, and the summary their median ratio; windows of 8, 16
 *   and 32 tokens show how much it moves the share.
 * - Bytes per token are an argument (bench_engine.py's decode_bytes(): every
 *   matrix once plus the K/V of the mean context), the same number both of its
 *   methods use; the read buffer is that size rounded up to 2 MiB.
 * - The reads cannot be optimized away: every task's XOR of the buffer is
 *   folded into a check that is printed; the buffer is allocated like
 *   bench_membw's (2 MiB aligned, MADV_HUGEPAGE, written before use).
 * - Window times come from the logits observer, called once per token after
 *   the forward step that produced that token's logits: a window of K tokens
 *   spans K forward steps and K samplings, as pcache generate's decode tok/s.
 *   (The text callback lags behind tokens whose UTF-8 is incomplete.) */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "membw_read.h"
#include "pcache.h"
#include "util/clock.h"
#include "util/file.h"

enum { QUIET_MAX_MS = 500, MAX_READS = 64, PROMPT_MAX_BYTES = 64 << 20 };

typedef struct opts {
    const char *model, *prompt_file;
    double bytes, settle_ms, held_spread;
    int threads, tokens, k, ctx, reads, no_quiet;
} opts;

typedef struct pause_rec {
    int step;
    double gb_s, wait_before_ms, wait_after_ms;
    double samples[MAX_READS];
    int quiet;
} pause_rec;

typedef struct window {
    int tokens;
    double seconds, first_s, rest_sum_s;
} window;

typedef struct run {
    const opts *o;
    pc_membw bw;
    pid_t self;
    pause_rec *pauses;
    window *windows;
    int n_pauses, n_windows;
    double t_last; /* end of the previous observer call: a token's time starts here */
} run;

/* util/clock.h's monotonic clock, in seconds. */
static double now_s(void) { return 1e-3 * pc_now_ms(); }

static void sleep_s(double s) {
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Threads of this process other than `self` in state R (running or runnable). */
static int others_running(pid_t self) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const long tid = strtol(e->d_name, NULL, 10);
        if (tid <= 0 || tid == self) continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        const size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *close_paren = strrchr(buf, ')'); /* the state follows the name, which may hold spaces */
        if (close_paren && close_paren[1] == ' ' && close_paren[2] == 'R') n++;
    }
    closedir(d);
    return n;
}

/* Waits until every other thread sleeps; returns the ms waited, or -1 when not quiet within QUIET_MAX_MS. */
static double wait_quiet(const run *r) {
    const double t0 = now_s();
    if (r->o->no_quiet) return 0;
    while (others_running(r->self) != 0) {
        if (now_s() - t0 > QUIET_MAX_MS * 1e-3) return -1;
        sleep_s(50e-6);
    }
    return (now_s() - t0) * 1e3;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n), NAN when n is 0; v is reordered. */
static double median(double *v, int n) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The reads of one pause, between waits for a quiet process. */
static void pause_and_read(run *r, int step) {
    pause_rec *p = &r->pauses[r->n_pauses++];
    p->step = step;
    p->wait_before_ms = wait_quiet(r);
    if (r->o->settle_ms > 0) sleep_s(r->o->settle_ms * 1e-3);
    double sorted[MAX_READS];
    for (int i = 0; i < r->o->reads; i++) sorted[i] = p->samples[i] = pc_membw_sample(&r->bw);
    p->gb_s = median(sorted, r->o->reads);
    p->wait_after_ms = wait_quiet(r);
    p->quiet = p->wait_before_ms >= 0 && p->wait_after_ms >= 0;
}

/* The logits observer: called once per token, after the forward step that made its logits. */
static void on_logits(void *user, size_t step, const float *logits, int32_t n_vocab) {
    (void)logits, (void)n_vocab;
    run *r = user;
    const double t = now_s();
    const int s = (int)step;
    if (s > 0) {
        window *w = &r->windows[r->n_windows];
        const double dt = t - r->t_last;
        if (w->tokens == 0) w->first_s = dt;
        else w->rest_sum_s += dt;
        w->tokens++;
        w->seconds += dt;
    }
    if (s % r->o->k == 0 || s == r->o->tokens) {
        if (s > 0) r->n_windows++;
        pause_and_read(r, s);
    }
    r->t_last = now_s();
}

static int usage(void) {
    fprintf(stderr, "usage: bench_decode_paired -m MODEL --prompt-file F --bytes N [-t THREADS] [-n TOKENS] [-k K] "
                    "[-c CTX] [--reads R (1..%d)] [--settle-ms MS] [--no-quiet] [--held-spread S]\n", MAX_READS);
    return 2;
}

static int parse(int argc, char **argv, opts *o) {
    *o = (opts){.threads = 2, .tokens = 128, .k = 16, .reads = 3, .held_spread = 0.15};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-quiet")) {
            o->no_quiet = 1;
            continue;
        }
        if (!v) return -1;
        i++;
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "--prompt-file")) o->prompt_file = v;
        else if (!strcmp(a, "--bytes")) o->bytes = atof(v);
        else if (!strcmp(a, "-t")) o->threads = atoi(v);
        else if (!strcmp(a, "-n")) o->tokens = atoi(v);
        else if (!strcmp(a, "-k")) o->k = atoi(v);
        else if (!strcmp(a, "-c")) o->ctx = atoi(v);
        else if (!strcmp(a, "--reads")) o->reads = atoi(v);
        else if (!strcmp(a, "--settle-ms")) o->settle_ms = atof(v);
        else if (!strcmp(a, "--held-spread")) o->held_spread = atof(v);
        else return -1;
    }
    const int ok = o->model && o->prompt_file && o->bytes >= 4096 && o->threads >= 1 && o->threads <= 256 &&
                   o->tokens >= 1 && o->k >= 1 && o->reads >= 1 && o->reads <= MAX_READS && o->settle_ms >= 0 &&
                   o->held_spread >= 0;
    return ok ? 0 : -1;
}

static int held(const run *r, int w) {
    const pause_rec *a = &r->pauses[w], *b = &r->pauses[w + 1];
    const double lo = a->gb_s < b->gb_s ? a->gb_s : b->gb_s;
    return a->quiet && b->quiet && fabs(a->gb_s - b->gb_s) <= r->o->held_spread * lo;
}

static double share(const run *r, int w) {
    const window *x = &r->windows[w];
    const double bw = 0.5 * (r->pauses[w].gb_s + r->pauses[w + 1].gb_s) * 1e9;
    return (double)x->tokens / x->seconds * r->o->bytes / bw;
}

static void print_json(const run *r, size_t n_prompt, const char *isa) {
    const opts *o = r->o;
    double *held_shares = calloc((size_t)r->n_windows + 1, sizeof(double));
    double *all_shares = calloc((size_t)r->n_windows + 1, sizeof(double));
    double *first_ratio = calloc((size_t)r->n_windows + 1, sizeof(double));
    int n_held = 0, n_ratio = 0;
    double tokens = 0, seconds = 0;
    printf("{\"model\": \"%s\", \"isa\": \"%s\", \"threads\": %d, \"prompt_tokens\": %zu, \"tokens\": %d, \"k\": %d, "
           "\"reads\": %d, \"settle_ms\": %.3f, \"quiet_wait\": %s, \"held_spread\": %.3f, \"bytes\": %.0f, "
           "\"read_bytes\": %zu, \"huge_page_mib\": %.0f, \"windows\": [",
           o->model, isa, o->threads, n_prompt, o->tokens, o->k, o->reads, o->settle_ms, o->no_quiet ? "false" : "true",
           o->held_spread, o->bytes, r->bw.bytes, pc_membw_huge_page_mib());
    for (int w = 0; w < r->n_windows; w++) {
        const window *x = &r->windows[w];
        const double rest = x->tokens > 1 ? x->rest_sum_s / (x->tokens - 1) : NAN;
        const int h = held(r, w);
        all_shares[w] = share(r, w);
        if (h) held_shares[n_held++] = all_shares[w];
        if (x->tokens > 1) first_ratio[n_ratio++] = x->first_s / rest;
        tokens += x->tokens;
        seconds += x->seconds;
        printf("%s{\"tokens\": %d, \"seconds\": %.9f, \"tok_s\": %.3f, \"first_token_s\": %.9f, "
               "\"rest_token_s\": %.9f, \"read_before_gb_s\": %.6f, \"read_after_gb_s\": %.6f, \"held\": %s, "
               "\"share\": %.6f}",
               w ? ", " : "", x->tokens, x->seconds, x->tokens / x->seconds, x->first_s, x->tokens > 1 ? rest : 0.0,
               r->pauses[w].gb_s, r->pauses[w + 1].gb_s, h ? "true" : "false", all_shares[w]);
    }
    printf("], \"pauses\": [");
    for (int p = 0; p < r->n_pauses; p++) {
        const pause_rec *x = &r->pauses[p];
        printf("%s{\"step\": %d, \"gb_s\": %.6f, \"quiet\": %s, \"wait_before_ms\": %.3f, \"wait_after_ms\": %.3f, "
               "\"samples\": [",
               p ? ", " : "", x->step, x->gb_s, x->quiet ? "true" : "false", x->wait_before_ms, x->wait_after_ms);
        for (int i = 0; i < o->reads; i++) printf("%s%.6f", i ? ", " : "", x->samples[i]);
        printf("]}");
    }
    const int n_all = r->n_windows;
    printf("], \"n_windows\": %d, \"n_held\": %d, \"median_share_held\": %.6f, \"median_share_all\": %.6f, "
           "\"decode_tok_s\": %.3f, \"first_over_rest_median\": %.4f, \"check\": %llu}\n",
           n_all, n_held, n_held ? median(held_shares, n_held) : 0.0, n_all ? median(all_shares, n_all) : 0.0,
           seconds > 0 ? tokens / seconds : 0.0, n_ratio ? median(first_ratio, n_ratio) : 0.0,
           (unsigned long long)(r->bw.check & 0xFF));
    free(held_shares);
    free(all_shares);
    free(first_ratio);
}

/* Prefill and decode with the observer pausing every k tokens; 0 or an exit status. */
static int decode(run *r, pc_engine *e, const int32_t *ids, size_t n_ids) {
    pc_gen_params gp = pc_gen_default_params();
    gp.n_predict = r->o->tokens + 1; /* the first token ends the prefill; o->tokens decode steps follow */
    gp.temp = 0;
    gp.ignore_eos = true;
    gp.on_logits = on_logits;
    gp.logits_user = r;
    pc_gen_result res = {0};
    pc_error err = {0};
    if (pc_engine_generate(e, ids, n_ids, &gp, NULL, NULL, &res, &err) != PC_OK) {
        fprintf(stderr, "bench_decode_paired: generate: %s\n", err.msg);
        return 1;
    }
    const int complete = (int)res.n_tokens == r->o->tokens + 1;
    pc_gen_result_free(&res);
    if (!complete) {
        fprintf(stderr, "bench_decode_paired: generation stopped early (context too small?)\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    opts o;
    if (parse(argc, argv, &o) != 0) return usage();
    char *text = NULL;
    size_t text_len = 0;
    pc_error err = {0};
    if (pc_file_read(o.prompt_file, PROMPT_MAX_BYTES, 0, &text, &text_len, &err) != PC_OK)
        return fprintf(stderr, "bench_decode_paired: %s\n", err.msg), 1;
    pc_engine_params ep = pc_engine_default_params();
    ep.model_path = o.model;
    ep.n_threads = o.threads;
    ep.n_ctx = o.ctx; /* bench_engine.py passes pcache generate's -c; 0: the model's */
    ep.backend = "cpu";
    pc_engine *e = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (pc_engine_open(&ep, &e, &err) != PC_OK ||
        pc_engine_tokenize(e, text, text_len, true, false, &ids, &n_ids, &err) != PC_OK) {
        fprintf(stderr, "bench_decode_paired: %s\n", err.msg);
        free(text);
        pc_engine_free(e);
        return 1;
    }
    free(text);
    const int n_windows = (o.tokens + o.k - 1) / o.k;
    run r = {.o = &o, .self = (pid_t)syscall(SYS_gettid), .pauses = calloc((size_t)n_windows + 1, sizeof(pause_rec)),
             .windows = calloc((size_t)n_windows, sizeof(window))};
    pc_pool *pool = pc_pool_create(o.threads);
    int rc = 1;
    if (!r.pauses || !r.windows || !pool || pc_membw_init(&r.bw, (size_t)o.bytes, pool, o.threads) != 0)
        fprintf(stderr, "bench_decode_paired: out of memory for %.0f bytes or threads\n", o.bytes);
    else if ((rc = decode(&r, e, ids, n_ids)) == 0)
        print_json(&r, n_ids, pc_engine_isa(e));
    pc_membw_free(&r.bw);
    pc_pool_free(pool);
    free(r.pauses);
    free(r.windows);
    pc_free(ids);
    pc_engine_free(e);
    return rc;
}
