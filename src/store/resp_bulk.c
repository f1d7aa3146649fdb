/* resp_bulk.c - Redis bulk replies read straight into the caller's memory (resp_bulk.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "store/resp_bulk.h"

void pc_resp_reader_init(pc_resp_reader *r, int fd) {
    r->fd = fd;
    r->beg = r->end = 0;
    r->why = NULL;
    r->sys_errno = 0;
}

static int fail(pc_resp_reader *r, const char *why, int e) {
    r->why = why;
    r->sys_errno = e;
    return PC_RESP_FAIL;
}

/* read(2) into dst; > 0 bytes, or PC_RESP_FAIL with why set. */
static ssize_t rd(pc_resp_reader *r, void *dst, size_t n) {
    for (;;) {
        ssize_t got = read(r->fd, dst, n);
        if (got > 0) return got;
        if (got == 0) return fail(r, "Server closed the connection", 0);
        if (errno == EINTR) continue;
        return fail(r, errno == EAGAIN || errno == EWOULDBLOCK ? "Resource temporarily unavailable" : "read failed", errno);
    }
}

int pc_resp_parse_bulk_len(const char *line, size_t len, int64_t *out) {
    if (len < 2 || line[0] != '$') return -1;
    if (len == 3 && line[1] == '-' && line[2] == '1') {
        *out = PC_RESP_NIL;
        return 0;
    }
    int64_t v = 0;
    for (size_t i = 1; i < len; i++) {
        if (line[i] < '0' || line[i] > '9' || v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (line[i] - '0');
    }
    if (len > 2 && line[1] == '0') return -1; /* no leading zeros: the server never sends them */
    *out = v;
    return 0;
}

/* The next CRLF-terminated line (CRLF excluded) staged and returned in place. */
static const char *next_line(pc_resp_reader *r, size_t *len) {
    for (;;) {
        for (size_t i = r->beg; i + 1 < r->end; i++)
            if (r->buf[i] == '\r' && r->buf[i + 1] == '\n') {
                const char *line = (const char *)r->buf + r->beg;
                *len = i - r->beg;
                r->beg = i + 2;
                return line;
            }
        if (r->end - r->beg >= PC_RESP_LINE_MAX) {
            fail(r, "protocol error: a reply line is too long", 0);
            return NULL;
        }
        if (r->beg > 0) { /* compact, then read more */
            memmove(r->buf, r->buf + r->beg, r->end - r->beg);
            r->end -= r->beg;
            r->beg = 0;
        }
        ssize_t got = rd(r, r->buf + r->end, sizeof r->buf - r->end);
        if (got < 0) return NULL;
        r->end += (size_t)got;
    }
}

int64_t pc_resp_next_bulk(pc_resp_reader *r, char *msg, size_t cap) {
    size_t len = 0;
    const char *line = next_line(r, &len);
    if (!line) return PC_RESP_FAIL;
    if (len > 0 && line[0] == '-') {
        size_t n = len - 1 < cap - 1 ? len - 1 : cap - 1;
        memcpy(msg, line + 1, n);
        msg[n] = '\0';
        return PC_RESP_ERROR_REPLY;
    }
    int64_t v;
    if (pc_resp_parse_bulk_len(line, len, &v) != 0) return fail(r, "protocol error: not a bulk reply", 0);
    return v;
}

int pc_resp_read(pc_resp_reader *r, void *dst, size_t n) {
    uint8_t *d = dst;
    size_t staged = r->end - r->beg < n ? r->end - r->beg : n;
    memcpy(d, r->buf + r->beg, staged);
    r->beg += staged;
    for (size_t got = staged; got < n;) { /* straight from the socket into place */
        ssize_t k = rd(r, d + got, n - got);
        if (k < 0) return PC_RESP_FAIL;
        got += (size_t)k;
    }
    return 0;
}

int pc_resp_skip(pc_resp_reader *r, size_t n) {
    uint8_t sink[4096];
    while (n) {
        size_t k = n < sizeof sink ? n : sizeof sink;
        if (pc_resp_read(r, sink, k) != 0) return PC_RESP_FAIL;
        n -= k;
    }
    return 0;
}

int pc_resp_crlf(pc_resp_reader *r) {
    uint8_t two[2];
    if (pc_resp_read(r, two, 2) != 0) return PC_RESP_FAIL;
    return two[0] == '\r' && two[1] == '\n' ? 0 : fail(r, "protocol error: a bulk reply does not end in CRLF", 0);
}

bool pc_resp_drained(const pc_resp_reader *r) { return r->beg == r->end; }
