/* error.c - error reports: one message buffer owned by the caller, no globals. */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pc_status pc_fail(pc_error *err, pc_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

pc_status pc_fail_wrap(pc_error *err, const char *fmt, ...) {
    if (!err) return PC_ERR_INVALID;
    char prefix[PC_ERROR_MSG_MAX], old[PC_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation is acceptable: the head of the message names the place. */
    size_t n = strnlen(prefix, sizeof prefix - 3);
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3;
    size_t m = strnlen(old, room);
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = '\0';
    return err->code;
}

void pc_error_clear(pc_error *err) {
    if (!err) return;
    err->code = PC_OK;
    err->msg[0] = '\0';
}

const char *pc_strerror(pc_status s) {
    switch (s) {
    case PC_OK: return "ok";
    case PC_ERR_IO: return "I/O error";
    case PC_ERR_FORMAT: return "format error";
    case PC_ERR_NOMEM: return "out of memory";
    case PC_ERR_INVALID: return "invalid argument";
    case PC_ERR_UNSUPPORTED: return "unsupported";
    case PC_ERR_RANGE: return "out of range";
    case PC_ERR_NOT_FOUND: return "not found";
    case PC_ERR_BUSY: return "busy";
    case PC_ERR_EXISTS: return "already exists";
    case PC_ERR_QUOTA: return "over quota";
    }
    return "unknown error";
}

void pc_free(void *p) { free(p); }
