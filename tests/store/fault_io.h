/* fault_io.h - a store I/O seam that fails where real disks fail (tests only).
 *
 * Wraps the real POSIX seam and, as the test sets it: fails writes with
 * ENOSPC once a byte budget is spent (a full disk), fails reads with an errno,
 * kills the process at rename (a crash between write and rename: nothing
 * after it runs, exactly as after a power cut), refuses mappings (the
 * read-once path). Counts what it saw. */
#ifndef PC_TESTS_FAULT_IO_H
#define PC_TESTS_FAULT_IO_H

#include <errno.h>
#include <unistd.h>

#include "store/io.h"

typedef struct fault_io {
    pc_store_io io; /* hand &f->io to the store; io.ctx points back here */
    const pc_store_io *real;
    long write_budget; /* bytes writes may still take; < 0: no limit */
    int pread_errno;   /* non-zero: every pread fails with it */
    int crash_at_rename;
    int refuse_map;
    int writes, renames, maps, preads;
} fault_io;

#define FIO(ctx) ((fault_io *)(ctx))

static inline int f_open(void *c, const char *p, int fl, int m) { return FIO(c)->real->open(NULL, p, fl, m); }
static inline int f_close(void *c, int fd) { return FIO(c)->real->close(NULL, fd); }
static inline ssize_t f_pread(void *c, int fd, void *b, size_t n, uint64_t off) {
    FIO(c)->preads++;
    if (FIO(c)->pread_errno) return -FIO(c)->pread_errno;
    return FIO(c)->real->pread(NULL, fd, b, n, off);
}
static inline ssize_t f_write(void *c, int fd, const void *b, size_t n) {
    fault_io *f = FIO(c);
    f->writes++;
    if (f->write_budget >= 0) {
        if (f->write_budget == 0) return -ENOSPC;
        if ((long)n > f->write_budget) n = (size_t)f->write_budget; /* a short write, then ENOSPC */
        f->write_budget -= (long)n;
    }
    return f->real->write(NULL, fd, b, n);
}
static inline int f_fsync(void *c, int fd) { return FIO(c)->real->fsync(NULL, fd); }
static inline int f_fstat(void *c, int fd, uint64_t *s, int64_t *m) { return FIO(c)->real->fstat(NULL, fd, s, m); }
static inline int f_stat(void *c, const char *p, uint64_t *s, int64_t *m) { return FIO(c)->real->stat(NULL, p, s, m); }
static inline int f_touch(void *c, int fd) { return FIO(c)->real->touch(NULL, fd); }
static inline int f_rename(void *c, const char *a, const char *b) {
    FIO(c)->renames++;
    if (FIO(c)->crash_at_rename) _exit(FIO(c)->crash_at_rename);
    return FIO(c)->real->rename(NULL, a, b);
}
static inline int f_unlink(void *c, const char *p) { return FIO(c)->real->unlink(NULL, p); }
static inline int f_mkdir(void *c, const char *p) { return FIO(c)->real->mkdir(NULL, p); }
static inline int f_list(void *c, const char *d, int (*fn)(void *, const char *), void *u) {
    return FIO(c)->real->list(NULL, d, fn, u);
}
static inline void *f_map(void *c, int fd, size_t len) {
    FIO(c)->maps++;
    return FIO(c)->refuse_map ? NULL : FIO(c)->real->map(NULL, fd, len);
}
static inline void f_unmap(void *c, void *p, size_t len) { FIO(c)->real->unmap(NULL, p, len); }

static inline void fault_io_init(fault_io *f) {
    *f = (fault_io){.real = pc_store_io_posix(), .write_budget = -1};
    f->io = (pc_store_io){.ctx = f, .open = f_open, .close = f_close, .pread = f_pread, .write = f_write,
                          .fsync = f_fsync, .fstat = f_fstat, .stat = f_stat, .touch = f_touch, .rename = f_rename,
                          .unlink = f_unlink, .mkdir = f_mkdir, .list = f_list, .map = f_map, .unmap = f_unmap};
}

#endif
