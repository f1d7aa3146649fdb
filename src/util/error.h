/* error.h - filling pc_error reports. */
#ifndef PC_UTIL_ERROR_H
#define PC_UTIL_ERROR_H

#include "pcache.h"

/* Formats msg into err (if non-NULL), sets err->code, returns code.
 * Usage: return pc_fail(err, PC_ERR_FORMAT, "%s: offset %zu: bad magic", path, off); */
pc_status pc_fail(pc_error *err, pc_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message (adds context on the way up). */
pc_status pc_fail_wrap(pc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets err to PC_OK with an empty message. */
void pc_error_clear(pc_error *err);

#endif
