/* test_store_disk.c - the disk tier: files that survive the process, checked on
 * every read, and every way the disk can fail (through the fault-injecting
 * seam of fault_io.h, or by damaging files as a disk or a user would).
 *
 *  1. Restart: what one store wrote, a new store (a restarted process) indexes
 *     from the headers and serves from a mapping of the file (source disk),
 *     bit for bit; the hit is promoted to memory.
 *  2. Damage: a flipped payload byte, a flipped header byte, a truncated file,
 *     a file cut inside its header, a header from another model, another format
 *     version, a file named for another key: each detected (at start or at
 *     read), counted, logged, removed, never served; the piece can be stored
 *     again and served afterwards.
 *  3. Faults: a full disk on write (nothing half-written stays), a crash
 *     between write and rename (a real child process dies there; its temporary
 *     file is cleaned at the next start), a read error (a miss; the file is
 *     kept), a refused mapping (the file is read once instead).
 *  4. Budget: LRU eviction of files, at put and at start (by mtime), and a
 *     read refreshes a file's place.
 *  5. Two stores on one folder: what one writes, the other finds.
 *  6. Listing without a model (pcache cache ls|verify|rm): every entry with
 *     its label and size; verify finds the damaged one and says why; removal.
 *  7. A FIFO and a folder named like entries: never opened blocking. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fault_io.h"
#include "store_testlib.h"

typedef struct env {
    char root[64];
    t_log log;
    fault_io fio;
} env;

static pc_store *open_disk(env *E, size_t disk_budget, bool faulty) {
    pc_store_config c = t_config(&E->log);
    c.cache.dir = E->root;
    c.cache.disk_bytes = disk_budget;
    if (faulty) c.io = &E->fio.io;
    pc_store *s = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_store_open(&c, &s, &err) == PC_OK, "%s", err.msg);
    return s;
}

static void env_init(env *E) {
    memset(E, 0, sizeof *E);
    CHECK(t_tmpdir(E->root, sizeof E->root) != NULL);
    fault_io_init(&E->fio);
}

/* Entries written by one store, in a fresh folder. */
static void seed(env *E, const t_piece *p, int n) {
    pc_store *s = open_disk(E, 0, false);
    for (int i = 0; i < n; i++) t_put(s, &p[i], false);
    pc_store_close(s);
}

static int count_files(const char *root, const char *suffix) {
    char model[65], cmd[512];
    pc_hex(T_MODEL, 32, model);
    snprintf(cmd, sizeof cmd, "ls -a %s/%s | grep -c '%s$'", root, model, suffix);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f && fscanf(f, "%d", &n) != 1) n = -1;
    if (f) pclose(f);
    return n;
}

/* ---------------- 1. restart ---------------- */

static void check_restart(void) {
    env E;
    env_init(&E);
    t_piece p[3] = {t_piece_make(0, 40, ""), t_piece_make(1, 7, ""), t_piece_make(2, 64, "")};
    seed(&E, p, 3);
    char path[512];
    t_entry_path(E.root, &p[1], path, sizeof path);
    const long image = 4096 + (long)pc_store_payload_bytes(T_LAYERS, T_DIM, 7);
    CHECK_MSG(t_file_size(path) == image, "%s: %ld bytes, expected %ld", path, t_file_size(path), image);
    pc_store *s = open_disk(&E, 0, true);
    pc_cache_tier_stats ds = t_tier_stats(s, PC_SOURCE_DISK);
    CHECK_EQ_INT(ds.entries, 3);
    CHECK_EQ_INT(ds.writes, 0);
    /* served from a mapping of the file, then from memory */
    pc_store_desc d = t_desc(&p[1]);
    pc_store_entry *e = NULL;
    pc_kv_source src = PC_SOURCE_ENCODED;
    CHECK(pc_store_fetch(s, &d, &e, &src, NULL) == PC_OK && src == PC_SOURCE_DISK);
    const pc_kv_span *span = e ? pc_store_entry_span(e) : NULL;
    CHECK_MSG(span && span->release != NULL && E.fio.maps == 1, "the hit is not a span over the mapped file");
    CHECK(span && t_span_is(span, &p[1]));
    pc_store_release(s, e);
    CHECK_EQ_INT(t_fetch(s, &p[1]), PC_SOURCE_MEMORY);
    CHECK_EQ_INT(t_fetch(s, &p[0]), PC_SOURCE_DISK);
    CHECK_EQ_INT(t_fetch(s, &p[2]), PC_SOURCE_DISK);
    ds = t_tier_stats(s, PC_SOURCE_DISK);
    CHECK_EQ_INT(ds.hits, 3);
    CHECK(ds.bytes_read > 0 && ds.read_ms >= 0);
    CHECK_EQ_INT(E.log.lines, 0);
    pc_store_close(s);
    t_rmtree(E.root);
}

/* ---------------- 2. damage ---------------- */

static void flip(const char *path, long off) {
    int fd = open(path, O_RDWR);
    unsigned char b = 0;
    if (off < 0) off += t_file_size(path);
    CHECK(fd >= 0 && pread(fd, &b, 1, off) == 1);
    b ^= 0x20;
    CHECK(pwrite(fd, &b, 1, off) == 1);
    close(fd);
}

static void put_le32(const char *path, long off, uint32_t v) {
    int fd = open(path, O_RDWR);
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    CHECK(fd >= 0 && pwrite(fd, b, 4, off) == 4);
    close(fd);
}

typedef enum when { AT_START, AT_READ } when;

/* Damages piece 0's file, then: detected (when), counted, logged with why,
 * the file removed, a miss; stored again, it is served. */
static void check_damage(const char *what, void (*damage)(const char *path, env *E), when w, bool checksum,
                         const char *why) {
    env E;
    env_init(&E);
    t_piece p = t_piece_make(0, 33, "");
    seed(&E, &p, 1);
    char path[512];
    t_entry_path(E.root, &p, path, sizeof path);
    if (w == AT_START) damage(path, &E);
    pc_store *s = open_disk(&E, 0, false);
    if (w == AT_READ) damage(path, &E);
    CHECK_MSG(t_fetch(s, &p) == -1, "%s: a damaged entry was served", what);
    pc_cache_tier_stats ds = t_tier_stats(s, PC_SOURCE_DISK);
    CHECK_MSG(ds.checksum_failures == (checksum ? 1u : 0u) && ds.rejected == (checksum ? 0u : 1u),
              "%s: checksum failures %llu, rejected %llu", what, (unsigned long long)ds.checksum_failures,
              (unsigned long long)ds.rejected);
    CHECK_MSG(strstr(E.log.all, why) && strstr(E.log.all, "dropped"), "%s: log lacks '%s': %s", what, why, E.log.all);
    CHECK_MSG(t_file_size(path) < 0, "%s: the damaged file is still there", what);
    t_put(s, &p, false); /* encoded afresh */
    pc_store_close(s);
    s = open_disk(&E, 0, false);
    CHECK_MSG(t_fetch(s, &p) == PC_SOURCE_DISK, "%s: not served after being stored again", what);
    pc_store_close(s);
    t_rmtree(E.root);
}

static void d_payload(const char *path, env *E) {
    (void)E;
    flip(path, -5);
}
static void d_header(const char *path, env *E) {
    (void)E;
    flip(path, 170); /* a token id */
}
static void d_truncate(const char *path, env *E) {
    (void)E;
    CHECK(truncate(path, t_file_size(path) - 100) == 0);
}
static void d_cut(const char *path, env *E) {
    (void)E;
    CHECK(truncate(path, 100) == 0);
}
static void d_version(const char *path, env *E) {
    (void)E;
    put_le32(path, 8, PC_STORE_FORMAT_VERSION + 1);
}

/* An entry written for another model, put where this model's entry would be. */
static void d_other_model(const char *path, env *E) {
    char other[64];
    CHECK(t_tmpdir(other, sizeof other) != NULL);
    pc_store_config c = t_config(NULL);
    c.model[0] ^= 0xff;
    c.cache.dir = other;
    pc_store *s = NULL;
    CHECK(pc_store_open(&c, &s, NULL) == PC_OK);
    t_piece p = t_piece_make(0, 33, "");
    t_put(s, &p, false);
    pc_store_close(s);
    char model[65], key[65], src[512];
    pc_hex(c.model, 32, model);
    pc_store_key_hex(&p.key, key);
    snprintf(src, sizeof src, "%s/%s/%s.kv", other, model, key);
    CHECK_MSG(rename(src, path) == 0, "moving %s", src);
    t_rmtree(other);
    (void)E;
}

/* Another piece's file under this piece's name. */
static void d_other_key(const char *path, env *E) {
    t_piece q = t_piece_make(5, 33, "");
    pc_store *s = open_disk(E, 0, false);
    t_put(s, &q, false);
    pc_store_close(s);
    char src[512];
    t_entry_path(E->root, &q, src, sizeof src);
    CHECK(rename(src, path) == 0);
}

static void check_all_damage(void) {
    check_damage("flipped payload byte", d_payload, AT_READ, true, "payload checksum mismatch");
    check_damage("flipped payload byte (read by a new process)", d_payload, AT_START, true, "payload checksum mismatch");
    check_damage("flipped header byte", d_header, AT_START, true, "header checksum mismatch");
    check_damage("flipped header byte after start", d_header, AT_READ, true, "header checksum mismatch");
    check_damage("truncated file", d_truncate, AT_START, false, "truncated");
    check_damage("truncated after start", d_truncate, AT_READ, false, "truncated");
    check_damage("file cut inside its header", d_cut, AT_START, false, "too short");
    check_damage("another format version", d_version, AT_START, false, "version 2, this build reads version 1");
    check_damage("header from another model", d_other_model, AT_START, false, "another model");
    check_damage("header from another model after start", d_other_model, AT_READ, false, "another model");
    check_damage("another key's file", d_other_key, AT_START, false, "another key");
}

/* ---------------- 3. faults ---------------- */

static void check_full_disk(void) {
    env E;
    env_init(&E);
    E.fio.write_budget = 6000; /* the header fits, the payload does not */
    pc_store *s = open_disk(&E, 0, true);
    t_piece p = t_piece_make(0, 60, "");
    t_put(s, &p, false); /* the request is served: memory holds it */
    CHECK_EQ_INT(t_fetch(s, &p), PC_SOURCE_MEMORY);
    pc_cache_tier_stats ds = t_tier_stats(s, PC_SOURCE_DISK);
    CHECK_EQ_INT(ds.errors, 1);
    CHECK_EQ_INT(ds.writes, 0);
    CHECK_MSG(strstr(E.log.all, "No space left on device") && strstr(E.log.all, "writing"), "log: %s", E.log.all);
    CHECK_EQ_INT(count_files(E.root, ".kv"), 0);
    CHECK_EQ_INT(count_files(E.root, ".tmp"), 0);
    pc_store_close(s);
    s = open_disk(&E, 0, false);
    CHECK_EQ_INT(t_fetch(s, &p), -1);
    t_put(s, &p, false); /* space again: written */
    pc_store_close(s);
    s = open_disk(&E, 0, false);
    CHECK_EQ_INT(t_fetch(s, &p), PC_SOURCE_DISK);
    pc_store_close(s);
    t_rmtree(E.root);
}

static void check_crash_before_rename(void) {
    env E;
    env_init(&E);
    t_piece p = t_piece_make(0, 50, "");
    pid_t pid = fork();
    if (pid == 0) { /* the writer: dies at rename, after write and fsync */
        E.fio.crash_at_rename = 3;
        pc_store *s = open_disk(&E, 0, true);
        t_put(s, &p, false);
        _exit(0); /* not reached */
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 3, "the writer did not die at rename (status %d)", status);
    CHECK_EQ_INT(count_files(E.root, ".tmp"), 1);
    CHECK_EQ_INT(count_files(E.root, ".kv"), 0);
    pc_store *s = open_disk(&E, 0, false);
    CHECK_MSG(strstr(E.log.all, "unfinished write"), "log: %s", E.log.all);
    CHECK_EQ_INT(count_files(E.root, ".tmp"), 0);
    CHECK_EQ_INT(t_fetch(s, &p), -1);
    t_put(s, &p, false);
    pc_store_close(s);
    s = open_disk(&E, 0, false);
    CHECK_EQ_INT(t_fetch(s, &p), PC_SOURCE_DISK);
    pc_store_close(s);
    t_rmtree(E.root);
}

static void check_read_error_and_no_map(void) {
    env E;
    env_init(&E);
    t_piece p = t_piece_make(0, 24, "");
    seed(&E, &p, 1);
    char path[512];
    t_entry_path(E.root, &p, path, sizeof path);
    E.fio.pread_errno = EIO;
    pc_store *s = open_disk(&E, 0, true);
    CHECK_EQ_INT(t_fetch(s, &p), -1);
    pc_cache_tier_stats ds = t_tier_stats(s, PC_SOURCE_DISK);
    CHECK_EQ_INT(ds.errors, 1);
    CHECK(strstr(E.log.all, "Input/output error") != NULL);
    CHECK_MSG(t_file_size(path) > 0, "a read error must not delete the file");
    pc_store_close(s);
    E.fio.pread_errno = 0;
    E.fio.refuse_map = 1;
    s = open_disk(&E, 0, true);
    CHECK_EQ_INT(t_fetch(s, &p), PC_SOURCE_DISK); /* read once instead of mapped */
    CHECK(E.fio.maps == 1);
    pc_store_close(s);
    t_rmtree(E.root);
}

/* ---------------- 4. budget ---------------- */

static void set_mtime(const char *path, time_t t) {
    struct timespec ts[2] = {{.tv_sec = t}, {.tv_sec = t}};
    CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

static void check_budget(void) {
    env E;
    env_init(&E);
    t_piece p[4];
    for (int i = 0; i < 4; i++) p[i] = t_piece_make(i, 16, "");
    const size_t image = 4096 + pc_store_payload_bytes(T_LAYERS, T_DIM, 16);
    pc_store *s = open_disk(&E, 2 * image, false);
    t_put(s, &p[0], false);
    t_put(s, &p[1], false);
    t_put(s, &p[2], false); /* p0, the oldest, goes */
    char path[4][512];
    for (int i = 0; i < 4; i++) t_entry_path(E.root, &p[i], path[i], sizeof path[i]);
    CHECK(t_file_size(path[0]) < 0 && t_file_size(path[1]) > 0 && t_file_size(path[2]) > 0);
    CHECK_EQ_INT(t_tier_stats(s, PC_SOURCE_DISK).evictions, 1);
    pc_store_close(s);
    /* at start, the order comes from mtimes; a read makes a file the newest */
    set_mtime(path[1], 1000);
    set_mtime(path[2], 2000);
    s = open_disk(&E, 2 * image, false);
    CHECK_EQ_INT(t_fetch(s, &p[1]), PC_SOURCE_DISK);
    struct stat st;
    CHECK(stat(path[1], &st) == 0 && st.st_mtime > 2000); /* the read was recorded for the next start */
    t_put(s, &p[3], false); /* p2 is now the least recently used */
    CHECK(t_file_size(path[1]) > 0 && t_file_size(path[2]) < 0 && t_file_size(path[3]) > 0);
    pc_store_close(s);
    set_mtime(path[1], 1000);
    set_mtime(path[3], 2000);
    s = open_disk(&E, image, false); /* a smaller budget: the start evicts the older file */
    CHECK(t_file_size(path[1]) < 0 && t_file_size(path[3]) > 0);
    CHECK_EQ_INT(t_tier_stats(s, PC_SOURCE_DISK).entries, 1);
    pc_store_close(s);
    t_rmtree(E.root);
}

/* ---------------- 5. a shared folder ---------------- */

static void check_shared_folder(void) {
    env E;
    env_init(&E);
    pc_store *a = open_disk(&E, 0, false), *b = open_disk(&E, 0, false);
    t_piece p = t_piece_make(0, 12, "");
    CHECK(!pc_store_exists(b, &p.key));
    t_put(a, &p, false);
    CHECK(pc_store_exists(b, &p.key));
    CHECK_EQ_INT(t_fetch(b, &p), PC_SOURCE_DISK);
    pc_error err = {0};
    CHECK(pc_store_remove(a, &p.key, &err) == PC_OK);
    CHECK_EQ_INT(t_fetch(b, &p), PC_SOURCE_MEMORY); /* b's memory copy lives on */
    pc_store_close(a);
    pc_store_close(b);
    t_rmtree(E.root);
}

static void check_bad_folder(void) {
    pc_store_config c = t_config(NULL);
    c.cache.dir = "/proc/no-such-place/cache";
    pc_store *s = NULL;
    pc_error err = {0};
    CHECK(pc_store_open(&c, &s, &err) == PC_ERR_IO && s == NULL);
    CHECK_MSG(strstr(err.msg, "/proc/no-such-place/cache") && strstr(err.msg, "cannot create"), "%s", err.msg);
}

/* ---------------- 6. listing ---------------- */

typedef struct listing {
    int n, bad;
    char labels[512];
    char bad_where[512], why[512];
} listing;

static bool list_one(void *user, const pc_cache_entry_info *e) {
    listing *L = user;
    L->n++;
    strcat(L->labels, e->label);
    strcat(L->labels, ";");
    if (e->problem) {
        L->bad++;
        snprintf(L->bad_where, sizeof L->bad_where, "%s", e->where);
        snprintf(L->why, sizeof L->why, "%s", e->problem);
    }
    CHECK(e->tier == PC_SOURCE_DISK && strlen(e->key) == 64 && strlen(e->model) == 64);
    return true;
}

static void check_listing(void) {
    env E;
    env_init(&E);
    t_piece p[3] = {t_piece_make(0, 10, ""), t_piece_make(1, 20, ""), t_piece_make(2, 30, "")};
    seed(&E, p, 3);
    pc_cache_params cp = {.dir = E.root};
    listing L = {0};
    pc_error err = {0};
    CHECK(pc_cache_scan(&cp, false, list_one, &L, &err) == PC_OK);
    CHECK(L.n == 3 && L.bad == 0 && strstr(L.labels, "test:piece#0;") && strstr(L.labels, "test:piece#2;"));
    char path[512];
    t_entry_path(E.root, &p[1], path, sizeof path);
    flip(path, -3); /* only a full read finds it */
    memset(&L, 0, sizeof L);
    CHECK(pc_cache_scan(&cp, false, list_one, &L, &err) == PC_OK && L.bad == 0);
    memset(&L, 0, sizeof L);
    CHECK(pc_cache_scan(&cp, true, list_one, &L, &err) == PC_OK);
    CHECK_MSG(L.bad == 1 && strcmp(L.bad_where, path) == 0 && strstr(L.why, "payload checksum"), "verify: %d bad, %s",
              L.bad, L.why);
    pc_cache_entry_info e = {.tier = PC_SOURCE_DISK, .where = path};
    CHECK(pc_cache_remove(&cp, &e, &err) == PC_OK && t_file_size(path) < 0);
    memset(&L, 0, sizeof L);
    CHECK(pc_cache_scan(&cp, true, list_one, &L, &err) == PC_OK && L.n == 2 && L.bad == 0);
    pc_cache_params none = {.dir = "/nonexistent/pcache"};
    CHECK(pc_cache_scan(&none, false, list_one, &L, &err) == PC_ERR_IO && strstr(err.msg, "/nonexistent/pcache"));
    t_rmtree(E.root);
}

/* ---------------- 7. special files ---------------- */

/* A FIFO and a folder named like entries: opening the FIFO for reading used
 * to wait for a writer forever (at the store's start, which reads every
 * header; at a lookup; in a listing). Now each is refused at once: the
 * store starts, the lookups miss, the pieces can be stored over them, and
 * the listing names both. alarm() turns a hang into a failure. */
static void check_special_files(void) {
    env E;
    env_init(&E);
    t_piece p[3] = {t_piece_make(0, 10, ""), t_piece_make(1, 20, ""), t_piece_make(2, 30, "")};
    seed(&E, p, 1);
    char fifo[512], dir[512];
    t_entry_path(E.root, &p[1], fifo, sizeof fifo);
    t_entry_path(E.root, &p[2], dir, sizeof dir);
    CHECK(mkfifo(fifo, 0600) == 0 && mkdir(dir, 0700) == 0);
    alarm(20);
    pc_cache_params cp = {.dir = E.root};
    listing L = {0};
    pc_error err = {0};
    CHECK(pc_cache_scan(&cp, false, list_one, &L, &err) == PC_OK);
    CHECK_MSG(L.n == 3 && L.bad == 2 && strstr(L.why, "cannot read"), "listing: %d entries, %d bad (%s)", L.n, L.bad,
              L.why);
    pc_store *s = open_disk(&E, 0, false);
    CHECK_EQ_INT(t_fetch(s, &p[0]), PC_SOURCE_DISK);
    CHECK_EQ_INT(t_fetch(s, &p[1]), -1);
    CHECK_EQ_INT(t_fetch(s, &p[2]), -1);
    t_put(s, &p[1], false); /* the new file takes the FIFO's name */
    pc_store_close(s);
    s = open_disk(&E, 0, false);
    CHECK_EQ_INT(t_fetch(s, &p[1]), PC_SOURCE_DISK);
    pc_store_close(s);
    alarm(0);
    rmdir(dir);
    t_rmtree(E.root);
}

int main(void) {
    check_restart();
    check_all_damage();
    check_full_disk();
    check_crash_before_rename();
    check_read_error_and_no_map();
    check_budget();
    check_shared_folder();
    check_bad_folder();
    check_listing();
    check_special_files();
    return check_report();
}
