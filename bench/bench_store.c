/* bench_store.c - how long the module store takes to make a schema's KV ready
 * from each tier, against encoding it, and the limits of the paths it reads.
 *
 * Not a test: a tool that bench/bench_store.py runs once per phase, each in
 * its own process (as a restarted server would be), and that prints one JSON
 * line per phase.
 *
 *   bench_store PHASE -m MODEL --schema S.xml [--prompt P.xml] [--dir D]
 *               [--redis HOST:PORT --prefix P] [--repeat N] [-t THREADS]
 *   encode  register into the tiers given (every piece encoded), unregister
 *           and register again (every piece from memory), then run the
 *           prompt N times (in-memory hits)
 *   disk    register from the disk tier (page cache warm), run the prompt N
 *           times: the first run is the first request after a restart
 *   cold    drop the entry files from the page cache (posix_fadvise, checked
 *           with mincore), then register from the disk tier
 *   redis   register from Redis alone
 *   limits  read the entry files cold and warm with read(2), copy as many
 *           bytes through a loopback TCP connection, and (with --redis) GET
 *           16 MiB values from Redis pipelined, read raw into one buffer: what
 *           disk, page cache, loopback and the Redis server itself allow on
 *           this machine, in this run */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "pcache.h"
#include "store/resp_bulk.h"

typedef struct opts {
    const char *phase, *model, *schema, *prompt, *dir, *redis, *prefix;
    int repeat, threads;
} opts;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, const char *msg) {
    fprintf(stderr, "bench_store: %s: %s\n", what, msg);
    exit(1);
}

static pc_engine *open_engine(const opts *o, bool dir, bool redis) {
    pc_engine_params p = pc_engine_default_params();
    p.model_path = o->model;
    p.n_threads = o->threads;
    p.n_ctx = 16384;
    p.cache.dir = dir ? o->dir : NULL;
    p.cache.redis = redis ? o->redis : NULL;
    p.cache.redis_prefix = o->prefix;
    pc_engine *e = NULL;
    pc_error err = {0};
    if (pc_engine_open(&p, &e, &err) != PC_OK) die("opening the engine", err.msg);
    return e;
}

/* Registers the schema; prints its readiness as JSON fields; returns its name (malloc'd). */
static char *do_register(pc_engine *e, const opts *o, const char *label) {
    pc_schema_params sp = {0};
    char *name = NULL;
    pc_error err = {0};
    if (pc_engine_schema_load_file(e, o->schema, &sp, &name, &err) != PC_OK) die("registering", err.msg);
    pc_schema_stats st;
    pc_engine_schema_stats(e, name, &st, &err);
    printf("\"%s\": {\"ready_ms\": %.3f, \"encode_ms\": %.3f, \"encoded_tokens\": %lld, \"kv_bytes\": %zu, "
           "\"from_memory\": %d, \"from_disk\": %d, \"from_remote\": %d, \"encoded\": %d, \"not_loaded\": %d}, ",
           label, st.ready_ms, st.encode_ms, (long long)st.encoded_tokens, st.kv_bytes,
           st.pieces_from[PC_SOURCE_MEMORY], st.pieces_from[PC_SOURCE_DISK], st.pieces_from[PC_SOURCE_REMOTE],
           st.pieces_from[PC_SOURCE_ENCODED], st.not_loaded);
    return name;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) die(path, "cannot read");
    b[n] = '\0';
    fclose(f);
    return b;
}

/* Runs the prompt N times; prints every TTFT. */
static void run_prompt(pc_engine *e, const opts *o) {
    if (!o->prompt) return;
    char *xml = read_all(o->prompt);
    printf("\"ttft_ms\": [");
    for (int i = 0; i < o->repeat; i++) {
        pc_run_params rp = {.gen = pc_gen_default_params(), .use_cache = true};
        rp.gen.temp = 0;
        rp.gen.n_predict = 1;
        pc_run_result r = {0};
        pc_error err = {0};
        if (pc_engine_run(e, xml, strlen(xml), o->prompt, &rp, NULL, NULL, &r, &err) != PC_OK) die("running", err.msg);
        printf("%s%.3f", i ? ", " : "", r.gen.ttft_ms);
        pc_run_result_free(&r);
    }
    printf("], ");
    free(xml);
}

/* ---- the entry files ---- */

typedef struct files {
    char **path;
    size_t n;
    unsigned long long bytes;
} files;

static void list_files(const char *dir, files *F) {
    DIR *d = opendir(dir);
    if (!d) die(dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            list_files(p, F);
        } else if (strstr(de->d_name, ".kv")) {
            F->path = realloc(F->path, (F->n + 1) * sizeof *F->path);
            F->path[F->n++] = strdup(p);
            F->bytes += (unsigned long long)st.st_size;
        }
    }
    closedir(d);
}

/* Fraction of the files' pages in the page cache. */
static double resident(const files *F) {
    size_t in = 0, all = 0;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < F->n; i++) {
        int fd = open(F->path[i], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
            if (fd >= 0) close(fd);
            continue;
        }
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        size_t pages = ((size_t)st.st_size + page - 1) / page;
        unsigned char *vec = malloc(pages);
        if (m != MAP_FAILED && vec && mincore(m, (size_t)st.st_size, vec) == 0)
            for (size_t p = 0; p < pages; p++) in += vec[p] & 1;
        all += pages;
        free(vec);
        if (m != MAP_FAILED) munmap(m, (size_t)st.st_size);
        close(fd);
    }
    return all ? (double)in / (double)all : 0;
}

static void drop_cache(const files *F) {
    for (size_t i = 0; i < F->n; i++) {
        int fd = open(F->path[i], O_RDONLY);
        if (fd < 0) continue;
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

/* Reads every file with read(2) into one buffer; ms. */
static double read_files(const files *F) {
    const size_t chunk = 8u << 20;
    char *buf = malloc(chunk);
    double t0 = now_ms();
    for (size_t i = 0; i < F->n; i++) {
        int fd = open(F->path[i], O_RDONLY);
        if (fd < 0) continue;
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        while (read(fd, buf, chunk) > 0) {
        }
        close(fd);
    }
    double ms = now_ms() - t0;
    free(buf);
    return ms;
}

/* ---- loopback ---- */

typedef struct sender {
    int port;
    unsigned long long bytes;
} sender;

static void *send_all(void *arg) {
    sender *s = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return NULL;
    const size_t chunk = 1u << 20;
    char *buf = calloc(1, chunk);
    for (unsigned long long left = s->bytes; left > 0;) {
        ssize_t w = write(fd, buf, left < chunk ? (size_t)left : chunk);
        if (w <= 0) break;
        left -= (unsigned long long)w;
    }
    free(buf);
    close(fd);
    return NULL;
}

/* One TCP stream over loopback into a buffer as large as the data (as the
 * Redis tier reads parts into an entry image); ms. */
static double loopback(unsigned long long bytes) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &len) != 0)
        die("loopback", strerror(errno));
    sender s = {.port = ntohs(a.sin_port), .bytes = bytes};
    pthread_t th;
    pthread_create(&th, NULL, send_all, &s);
    int fd = accept(ls, NULL, NULL);
    char *dst = malloc((size_t)bytes);
    memset(dst, 1, (size_t)bytes); /* faulted in, like an image buffer reused */
    double t0 = now_ms();
    unsigned long long got = 0;
    while (got < bytes) {
        ssize_t r = read(fd, dst + got, (size_t)(bytes - got));
        if (r <= 0) break;
        got += (unsigned long long)r;
    }
    double ms = now_ms() - t0;
    pthread_join(th, NULL);
    close(fd);
    close(ls);
    free(dst);
    return ms;
}

/* What Redis itself serves: one 16 MiB value GET `count` times, pipelined,
 * each reply read raw into its place in one buffer (no checks, no parsing
 * beyond the length line); bytes/ms, or 0 without Redis. */
static double redis_raw_gbs(const char *addr, const char *prefix, unsigned long long bytes) {
    const char *colon = strrchr(addr, ':');
    char host[128];
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    redisContext *c = redisConnect(host, atoi(colon + 1));
    if (!c || c->err) return 0;
    const size_t val = 16u << 20;
    const int count = (int)(bytes / val) + 1;
    char key[256];
    snprintf(key, sizeof key, "%slimit-probe", prefix);
    char *v = calloc(1, val), *dst = malloc((size_t)count * val);
    redisReply *r = redisCommand(c, "SET %s %b", key, v, val);
    if (r) freeReplyObject(r);
    memset(dst, 1, (size_t)count * val);
    pc_resp_reader *R = malloc(sizeof *R);
    double t0 = now_ms();
    for (int i = 0; i < count; i++) redisAppendCommand(c, "GET %s", key);
    for (int done = 0; !done;)
        if (redisBufferWrite(c, &done) != REDIS_OK) break;
    pc_resp_reader_init(R, c->fd);
    for (int i = 0; i < count; i++) {
        char msg[64];
        if (pc_resp_next_bulk(R, msg, sizeof msg) != (int64_t)val || pc_resp_read(R, dst + (size_t)i * val, val) ||
            pc_resp_crlf(R))
            break;
    }
    double ms = now_ms() - t0;
    free(R);
    redisFree(c);
    c = redisConnect(host, atoi(colon + 1));
    if (c && !c->err && (r = redisCommand(c, "DEL %s", key))) freeReplyObject(r);
    if (c) redisFree(c);
    free(v);
    free(dst);
    return (double)count * (double)val / ms / 1e6;
}

static void phase_limits(const opts *o) {
    files F = {0};
    list_files(o->dir, &F);
    drop_cache(&F);
    double r0 = resident(&F), cold = read_files(&F), warm = read_files(&F);
    double lo = loopback(F.bytes);
    printf("\"bytes\": %llu, \"resident_before_cold\": %.3f, \"disk_read_ms\": %.3f, \"page_cache_read_ms\": %.3f, "
           "\"loopback_ms\": %.3f, \"redis_raw_gbs\": %.3f, ",
           F.bytes, r0, cold, warm, lo, o->redis ? redis_raw_gbs(o->redis, o->prefix, F.bytes) : 0.0);
}

static void parse(int argc, char **argv, opts *o) {
    *o = (opts){.phase = argc > 1 ? argv[1] : "", .repeat = 3, .prefix = "pcache-bench:"};
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "-m")) o->model = v;
        else if (!strcmp(k, "--schema")) o->schema = v;
        else if (!strcmp(k, "--prompt")) o->prompt = v;
        else if (!strcmp(k, "--dir")) o->dir = v;
        else if (!strcmp(k, "--redis")) o->redis = v;
        else if (!strcmp(k, "--prefix")) o->prefix = v;
        else if (!strcmp(k, "--repeat")) o->repeat = atoi(v);
        else if (!strcmp(k, "-t")) o->threads = atoi(v);
        else die("unknown option", k);
    }
}

int main(int argc, char **argv) {
    opts o;
    parse(argc, argv, &o);
    if (!strcmp(o.phase, "limits")) {
        if (!o.dir) die("limits", "needs --dir");
        printf("{\"phase\": \"limits\", ");
        phase_limits(&o);
        printf("\"ok\": true}\n");
        return 0;
    }
    if (!o.model || !o.schema) die("usage", "bench_store PHASE -m MODEL --schema S.xml [...]");
    printf("{\"phase\": \"%s\", ", o.phase);
    if (!strcmp(o.phase, "encode")) {
        pc_engine *e = open_engine(&o, o.dir != NULL, o.redis != NULL);
        char *name = do_register(e, &o, "encode");
        pc_error err = {0};
        /* unregistered, its pieces stay in memory: registering again is a memory hit for each */
        if (pc_engine_schema_remove(e, name, &err) != PC_OK) die("unregistering", err.msg);
        free(name);
        free(do_register(e, &o, "memory"));
        run_prompt(e, &o);
        pc_engine_free(e);
        printf("\"ok\": true}\n");
        return 0;
    }
    files F = {0};
    if (!strcmp(o.phase, "cold")) {
        list_files(o.dir, &F);
        drop_cache(&F);
        printf("\"resident_before\": %.3f, ", resident(&F));
    }
    const bool disk = strcmp(o.phase, "redis") != 0;
    pc_engine *e = open_engine(&o, disk, !disk);
    free(do_register(e, &o, "load"));
    if (!strcmp(o.phase, "disk")) run_prompt(e, &o);
    pc_cache_stats cs;
    pc_engine_cache_stats(e, &cs);
    const pc_cache_tier_stats *t = &cs.tier[disk ? PC_SOURCE_DISK : PC_SOURCE_REMOTE];
    printf("\"tier_bytes_read\": %llu, \"tier_read_ms\": %.3f, \"checksum_failures\": %llu, ",
           (unsigned long long)t->bytes_read, t->read_ms, (unsigned long long)t->checksum_failures);
    pc_engine_free(e);
    printf("\"ok\": true}\n");
    return 0;
}
