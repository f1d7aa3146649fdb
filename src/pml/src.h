/* src.h - reading the text of <module src="..."> safely.
 *
 * A src path is relative to a root folder and must stay inside it: absolute
 * paths, '..' components that climb above the root, and paths whose real
 * location (after symbolic links) lies outside the root are all refused.
 * The text is read with a size limit and checked to be UTF-8. */
#ifndef PC_PML_SRC_H
#define PC_PML_SRC_H

#include <stddef.h>

#include "pcache.h"

/* Reads root/rel into *text (malloc'd, NUL-terminated, *len bytes, line ends
 * \r\n and \r turned into \n as Python's read_text does) and its resolved
 * absolute path into *resolved (malloc'd). The caller frees both with free().
 * Fails with PC_ERR_INVALID for a path that leaves the root, PC_ERR_NOT_FOUND
 * when there is no such file, PC_ERR_RANGE over max_bytes, PC_ERR_FORMAT for
 * text that is not UTF-8, PC_ERR_IO otherwise; the message names rel but not
 * the document position (the caller adds it). */
pc_status pc_pml_src_read(const char *root, const char *rel, size_t max_bytes, char **text,
                          size_t *len, char **resolved, pc_error *err);

#endif
