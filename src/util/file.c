/* file.c - bounded whole-file reads of regular files (see file.h).
 *
 * Invariants: open() never blocks (O_NONBLOCK: opening a FIFO for reading
 * would otherwise wait for a writer forever); nothing is read before fstat
 * says the file is regular; at most max_bytes + 1 bytes are ever requested,
 * the extra byte only to notice a file that grew. */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"

static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

pc_status pc_file_open_regular(const char *path, unsigned flags, int *fd_out, size_t *size, pc_error *err) {
    *fd_out = -1;
    *size = 0;
    int oflags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | ((flags & PC_FILE_NOFOLLOW) ? O_NOFOLLOW : 0);
    int fd = open(path, oflags);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP && (flags & PC_FILE_NOFOLLOW))
            return pc_fail(err, PC_ERR_INVALID, "%s: is a symbolic link, which is not followed here", path);
        return pc_fail(err, e == ENOENT || e == ENOTDIR ? PC_ERR_NOT_FOUND : PC_ERR_IO, "%s: %s", path, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return pc_fail(err, PC_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return pc_fail(err, PC_ERR_INVALID, "%s: is %s, not a regular file", path, kind_of(sb.st_mode));
    }
    *fd_out = fd;
    *size = (uintmax_t)sb.st_size > SIZE_MAX - 2 ? SIZE_MAX - 2 : (size_t)sb.st_size;
    return PC_OK;
}

/* Reads up to want bytes; fewer only at end of file. */
static pc_status read_upto(int fd, const char *path, char *buf, size_t want, size_t *got, pc_error *err) {
    size_t n = 0;
    while (n < want) {
        ssize_t r = read(fd, buf + n, want - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return pc_fail(err, PC_ERR_IO, "%s: %s", path, strerror(errno));
        if (r == 0) break;
        n += (size_t)r;
    }
    *got = n;
    return PC_OK;
}

pc_status pc_file_read(const char *path, size_t max_bytes, unsigned flags, char **text, size_t *len, pc_error *err) {
    *text = NULL;
    *len = 0;
    if (!path) return pc_fail(err, PC_ERR_INVALID, "pc_file_read: NULL path");
    if (max_bytes > SIZE_MAX - 2) max_bytes = SIZE_MAX - 2;
    int fd = -1;
    size_t size = 0;
    pc_status st = pc_file_open_regular(path, flags, &fd, &size, err);
    if (st != PC_OK) return st;
    if (size > max_bytes) {
        close(fd);
        return pc_fail(err, PC_ERR_RANGE, "%s: is %zu bytes, over the limit of %zu bytes", path, size, max_bytes);
    }
    char *buf = malloc(size + 2);
    size_t n = 0;
    st = buf ? read_upto(fd, path, buf, size + 1, &n, err)
             : pc_fail(err, PC_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    close(fd);
    if (st == PC_OK && n > size)
        st = pc_fail(err, PC_ERR_IO, "%s: grew while being read (was %zu bytes)", path, size);
    if (st != PC_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return PC_OK;
}
