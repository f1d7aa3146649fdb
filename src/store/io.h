/* io.h - the store's seam to the file system (SQLite's VFS is the model).
 *
 * The disk tier does every file operation through this table, so tests can
 * inject faults where real disks fail: a full disk on write, an I/O error on
 * read, a crash between write and rename, a mapping refused. Every function
 * returns 0 / a count on success and a negative errno on failure; none of
 * them keeps state outside ctx. A read-only open (no O_CREAT, no
 * O_DIRECTORY) never blocks and opens only regular files, and stat sees only
 * regular files: anything else fails with -EINVAL (-EISDIR for a folder). */
#ifndef PC_STORE_IO_H
#define PC_STORE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pc_store_io {
    void *ctx;
    int (*open)(void *ctx, const char *path, int flags, int mode); /* fd */
    int (*close)(void *ctx, int fd);
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t n, uint64_t off);
    ssize_t (*write)(void *ctx, int fd, const void *buf, size_t n);
    int (*fsync)(void *ctx, int fd);
    int (*fstat)(void *ctx, int fd, uint64_t *size, int64_t *mtime_ns);
    int (*stat)(void *ctx, const char *path, uint64_t *size, int64_t *mtime_ns);
    int (*touch)(void *ctx, int fd); /* mtime = now: the LRU order outlives the process */
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    int (*mkdir)(void *ctx, const char *path); /* an existing folder is success */
    /* Calls fn for every name in dir (not "." or ".."); fn returning non-zero stops. */
    int (*list)(void *ctx, const char *dir, int (*fn)(void *user, const char *name), void *user);
    /* A read-only mapping of the first len bytes, or NULL when mapping is not
     * possible here (the caller then reads the file once into memory). */
    void *(*map)(void *ctx, int fd, size_t len);
    void (*unmap)(void *ctx, void *p, size_t len);
} pc_store_io;

/* The real file system (POSIX calls; mappings are MAP_SHARED | MAP_POPULATE). */
const pc_store_io *pc_store_io_posix(void);

/* Loops over short writes and reads; 0 or a negative errno (-EIO for a read past the end). */
int pc_io_write_all(const pc_store_io *io, int fd, const void *buf, size_t n);
int pc_io_read_all(const pc_store_io *io, int fd, void *buf, size_t n, uint64_t off);

#endif
