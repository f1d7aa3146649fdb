/* test_file.c - the bounded file reader.
 *
 * A regular file is read whole; a FIFO, a directory and a device are refused
 * at once (alarm() turns a hang into a failure); an oversize file and a
 * symbolic link under PC_FILE_NOFOLLOW are refused with the path in the
 * message. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "util/file.h"

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_buf_file: pc_file_read blocked (hang)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void expect_refused(const char *path, size_t max, unsigned flags, pc_status want, const char *needle) {
    char *t = (char *)1;
    size_t n = 1;
    pc_error err = {0};
    pc_status s = pc_file_read(path, max, flags, &t, &n, &err);
    CHECK_MSG(s == want && t == NULL && n == 0 && strstr(err.msg, path) && strstr(err.msg, needle),
              "%s: got %d '%s', want %d with '%s'", path, s, err.msg, want, needle);
}

static void check_file(void) {
    char dir[] = "/tmp/pc_test_file_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char path[256], fifo[256], link[256];
    snprintf(path, sizeof path, "%s/a.txt", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    write_file(path, "hello\nworld");
    char *t = NULL;
    size_t n = 0;
    pc_error err = {0};
    CHECK(pc_file_read(path, 64, 0, &t, &n, &err) == PC_OK && n == 11 && strcmp(t, "hello\nworld") == 0);
    free(t);
    CHECK(pc_file_read(path, 11, 0, &t, &n, &err) == PC_OK && n == 11); /* exactly the limit */
    free(t);
    expect_refused(path, 10, 0, PC_ERR_RANGE, "limit of 10 bytes");
    snprintf(link, sizeof link, "%s/nope.txt", dir);
    expect_refused(link, 64, 0, PC_ERR_NOT_FOUND, "No such file");
    expect_refused(dir, 64, 0, PC_ERR_INVALID, "directory");
    expect_refused("/dev/zero", 64, 0, PC_ERR_INVALID, "character device");
    signal(SIGALRM, on_alarm);
    alarm(10);
    CHECK(mkfifo(fifo, 0600) == 0);
    expect_refused(fifo, 64, 0, PC_ERR_INVALID, "FIFO");
    alarm(0);
    snprintf(link, sizeof link, "%s/link", dir);
    CHECK(symlink(path, link) == 0);
    CHECK(pc_file_read(link, 64, 0, &t, &n, &err) == PC_OK && n == 11);
    free(t);
    expect_refused(link, 64, PC_FILE_NOFOLLOW, PC_ERR_INVALID, "symbolic link");
    unlink(link);
    unlink(fifo);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    check_file();
    return check_report();
}
