/*
 * pcache.h - the public API of pcache, an LLM inference engine implementing
 * Prompt Cache (modular attention reuse).
 *
 * Conventions (the manual for every function below):
 *   - Every fallible function returns pc_status: PC_OK (0) or a negative code,
 *     and fills a caller-owned pc_error with a message saying what was wrong
 *     and where (file, offset, line, column, request). err may be NULL.
 *   - Handles are opaque. Each *_open / *_create has a *_free / *_close that is
 *     safe on NULL. Pointers handed out are owned by the handle unless the
 *     function's comment says the caller frees them (with pc_free).
 *   - No global mutable state: everything lives in the handles.
 */
#ifndef PCACHE_H
#define PCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pc_status {
    PC_OK = 0,
    PC_ERR_IO = -1,          /* a file could not be opened, read, mapped or written */
    PC_ERR_FORMAT = -2,      /* input is malformed (GGUF, PML, JSON, cache file) */
    PC_ERR_NOMEM = -3,       /* an allocation failed or a budget was exceeded */
    PC_ERR_INVALID = -4,     /* an argument or request is invalid */
    PC_ERR_UNSUPPORTED = -5, /* valid input that this build does not support */
    PC_ERR_RANGE = -6,       /* a size, count or index is out of range */
    PC_ERR_NOT_FOUND = -7,   /* a named thing (key, tensor, module, schema) does not exist */
} pc_status;

#define PC_ERROR_MSG_MAX 512

/* Caller-owned error report. code mirrors the returned status. */
typedef struct pc_error {
    pc_status code;
    char msg[PC_ERROR_MSG_MAX];
} pc_error;

/* A short static name for a status code ("format error", ...). */
const char *pc_strerror(pc_status s);

/* Frees memory that a pcache function handed to the caller. */
void pc_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* PCACHE_H */
