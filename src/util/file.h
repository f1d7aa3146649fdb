/* file.h - reading a whole file into memory, safely, for every input path a
 * user names (schemas, prompts, src= texts, prompt files).
 *
 * Only regular files are read: a FIFO, a device or a directory is refused
 * without blocking (the file is opened non-blocking and checked before any
 * read). At most max_bytes are read; a file that is longer, or grows past its
 * size while being read, is refused. */
#ifndef PC_UTIL_FILE_H
#define PC_UTIL_FILE_H

#include <stddef.h>

#include "pcache.h"

#define PC_FILE_NOFOLLOW 1u /* refuse a symbolic link as the last path component */

/* Reads path into *text (malloc'd, NUL-terminated, *len bytes; the caller
 * frees it with free()). Errors name the path and say what is wrong:
 * PC_ERR_NOT_FOUND (no such file), PC_ERR_INVALID (not a regular file),
 * PC_ERR_RANGE (over max_bytes), PC_ERR_NOMEM, PC_ERR_IO. On error *text is
 * NULL and *len 0. flags: 0 or PC_FILE_NOFOLLOW. */
pc_status pc_file_read(const char *path, size_t max_bytes, unsigned flags, char **text, size_t *len, pc_error *err);

/* Opens path for reading when it is a regular file (never blocking), for
 * callers that map or stream it themselves: *fd is theirs to close, *size its
 * size in bytes. Same errors as pc_file_read, except the size limit. */
pc_status pc_file_open_regular(const char *path, unsigned flags, int *fd, size_t *size, pc_error *err);

#endif
