/* src.c - reading <module src="..."> text from inside a root folder (see src.h).
 *
 * Invariants: the file opened is the realpath() of root/rel and that path
 * lies strictly inside realpath(root); the final component is opened with
 * O_NOFOLLOW so it cannot be swapped for a link after the check; at most
 * max_bytes are ever read. */
#include "pml/src.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pml/text.h"
#include "util/error.h"
#include "util/file.h"

/* False when a '..' component climbs above the start of rel. */
static bool stays_below(const char *rel) {
    long depth = 0;
    const char *p = rel;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t l = slash ? (size_t)(slash - p) : strlen(p);
        if (l == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0) return false;
        } else if (l > 0 && !(l == 1 && p[0] == '.')) {
            depth++;
        }
        p += l + (slash != NULL);
    }
    return true;
}

static bool inside(const char *root, const char *path) {
    size_t l = strlen(root);
    if (l == 1 && root[0] == '/') return path[0] == '/' && path[1] != '\0';
    return strncmp(root, path, l) == 0 && path[l] == '/';
}

static pc_status check_path(const char *root, const char *rel, char **resolved, pc_error *err) {
    if (rel[0] == '\0') return pc_fail(err, PC_ERR_INVALID, "src is empty");
    if (rel[0] == '/') return pc_fail(err, PC_ERR_INVALID, "src \"%s\" is an absolute path; it must be relative to the schema folder", rel);
    if (!stays_below(rel)) return pc_fail(err, PC_ERR_INVALID, "src \"%s\" climbs out of the schema folder with '..'", rel);
    char *rroot = realpath(root, NULL);
    if (!rroot) return pc_fail(err, PC_ERR_NOT_FOUND, "src root folder \"%s\": %s", root, strerror(errno));
    size_t need = strlen(rroot) + strlen(rel) + 2;
    char *joined = malloc(need);
    if (!joined) {
        free(rroot);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory resolving src \"%s\"", rel);
    }
    snprintf(joined, need, "%s/%s", rroot, rel);
    char *real = realpath(joined, NULL);
    int e = errno;
    free(joined);
    pc_status st = PC_OK;
    if (!real) {
        st = pc_fail(err, e == ENOENT ? PC_ERR_NOT_FOUND : PC_ERR_IO, "src \"%s\": %s", rel, strerror(e));
    } else if (!inside(rroot, real)) {
        st = pc_fail(err, PC_ERR_INVALID, "src \"%s\" resolves to \"%s\", outside the schema folder \"%s\" (symbolic link?)",
                     rel, real, rroot);
        free(real);
        real = NULL;
    }
    free(rroot);
    *resolved = real;
    return st;
}

/* \r\n and lone \r become \n, in place. */
static size_t normalize_newlines(char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            s[o++] = '\n';
            if (i + 1 < n && s[i + 1] == '\n') i++;
        } else {
            s[o++] = s[i];
        }
    }
    s[o] = '\0';
    return o;
}

pc_status pc_pml_src_read(const char *root, const char *rel, size_t max_bytes, char **text,
                          size_t *len, char **resolved, pc_error *err) {
    *text = NULL;
    *resolved = NULL;
    *len = 0;
    char *real = NULL;
    pc_status st = check_path(root, rel, &real, err);
    if (st != PC_OK) return st;
    char *buf = NULL;
    size_t n = 0;
    st = pc_file_read(real, max_bytes, PC_FILE_NOFOLLOW, &buf, &n, err);
    if (st != PC_OK) pc_fail_wrap(err, "src \"%s\"", rel);
    if (st == PC_OK) {
        size_t bad = 0;
        if (!pc_pml_utf8_valid(buf, n, &bad)) {
            st = pc_fail(err, PC_ERR_FORMAT, "src \"%s\": byte %zu is not UTF-8 text (or is NUL)", rel, bad);
            free(buf);
            buf = NULL;
        }
    }
    if (st != PC_OK) {
        free(real);
        return st;
    }
    *len = normalize_newlines(buf, n);
    *text = buf;
    *resolved = real;
    return PC_OK;
}
