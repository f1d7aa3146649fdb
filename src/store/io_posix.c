/* io_posix.c - the store's file system seam over the real POSIX calls. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/io.h"

static int neg(int rc) { return rc < 0 ? -errno : rc; }

/* A read-only open never blocks and yields only regular files: a FIFO named
 * like an entry in a cache folder would otherwise hang the store's start
 * (which reads every entry's header), a lookup, or `pcache cache ls`, until
 * something writes to it. O_NONBLOCK changes nothing for a regular file. */
static int p_open(void *ctx, const char *path, int flags, int mode) {
    (void)ctx;
    const bool plain_read = (flags & O_ACCMODE) == O_RDONLY && !(flags & (O_DIRECTORY | O_CREAT));
    const int fd = open(path, flags | O_CLOEXEC | (plain_read ? O_NONBLOCK : 0), mode);
    if (fd < 0 || !plain_read) return neg(fd);
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : S_ISREG(st.st_mode) ? 0 : S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    if (e == 0) return fd;
    close(fd);
    return -e;
}

static int p_close(void *ctx, int fd) {
    (void)ctx;
    return neg(close(fd));
}

static ssize_t p_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off) {
    (void)ctx;
    ssize_t r;
    do r = pread(fd, buf, n, (off_t)off);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static ssize_t p_write(void *ctx, int fd, const void *buf, size_t n) {
    (void)ctx;
    ssize_t r;
    do r = write(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static int p_fsync(void *ctx, int fd) {
    (void)ctx;
    return neg(fsync(fd));
}

static void fill_stat(const struct stat *st, uint64_t *size, int64_t *mtime_ns) {
    if (size) *size = (uint64_t)st->st_size;
    if (mtime_ns) *mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int p_fstat(void *ctx, int fd, uint64_t *size, int64_t *mtime_ns) {
    (void)ctx;
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    fill_stat(&st, size, mtime_ns);
    return 0;
}

/* Like a read-only open, sees only regular files: a FIFO or a folder named
 * like an entry is no entry, and a put replaces it. */
static int p_stat(void *ctx, const char *path, uint64_t *size, int64_t *mtime_ns) {
    (void)ctx;
    struct stat st;
    if (stat(path, &st) != 0) return -errno;
    if (!S_ISREG(st.st_mode)) return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    fill_stat(&st, size, mtime_ns);
    return 0;
}

static int p_touch(void *ctx, int fd) {
    (void)ctx;
    return neg(futimens(fd, NULL));
}

static int p_rename(void *ctx, const char *from, const char *to) {
    (void)ctx;
    return neg(rename(from, to));
}

static int p_unlink(void *ctx, const char *path) {
    (void)ctx;
    return neg(unlink(path));
}

static int p_mkdir(void *ctx, const char *path) {
    (void)ctx;
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    return -errno;
}

static int p_list(void *ctx, const char *dir, int (*fn)(void *user, const char *name), void *user) {
    (void)ctx;
    DIR *d = opendir(dir);
    if (!d) return -errno;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) rc = fn(user, de->d_name);
    closedir(d);
    return rc;
}

/* MAP_POPULATE maps every page at once: a hit's checksum pass and the
 * attention kernels then run without page faults. */
static void *p_map(void *ctx, int fd, size_t len) {
    (void)ctx;
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void p_unmap(void *ctx, void *p, size_t len) {
    (void)ctx;
    munmap(p, len);
}

static const pc_store_io POSIX_IO = {
    .ctx = NULL, .open = p_open, .close = p_close, .pread = p_pread, .write = p_write, .fsync = p_fsync,
    .fstat = p_fstat, .stat = p_stat, .touch = p_touch, .rename = p_rename, .unlink = p_unlink, .mkdir = p_mkdir,
    .list = p_list, .map = p_map, .unmap = p_unmap,
};

const pc_store_io *pc_store_io_posix(void) { return &POSIX_IO; }

int pc_io_write_all(const pc_store_io *io, int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = io->write(io->ctx, fd, p, n);
        if (w < 0) return (int)w;
        if (w == 0) return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int pc_io_read_all(const pc_store_io *io, int fd, void *buf, size_t n, uint64_t off) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = io->pread(io->ctx, fd, p, n, off);
        if (r < 0) return (int)r;
        if (r == 0) return -EIO;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}
