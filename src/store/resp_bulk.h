/* resp_bulk.h - Redis bulk replies read straight from the socket into the
 * caller's memory (the Redis tier's part reads).
 *
 * hiredis reads a reply through a 16 KiB stack buffer into its own growing
 * buffer, then copies it into a reply object; the tier would copy it once
 * more into the entry's image: four copies of every byte, which keeps loading
 * well below what loopback delivers. Here the bulk bytes go from the kernel
 * into their final place in one read(2) per socket buffer; only the short
 * "$<len>\r\n" lines pass through a small staging buffer.
 *
 * Used only right after the commands were sent through hiredis and before
 * hiredis read anything of their replies (the tier checks its reader is
 * empty), so the byte stream is exactly the replies, in order. Timeouts come
 * from the socket's SO_RCVTIMEO, which hiredis set. */
#ifndef PC_STORE_RESP_BULK_H
#define PC_STORE_RESP_BULK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PC_RESP_STAGE 65536
#define PC_RESP_LINE_MAX 512 /* longest header or error line accepted */

typedef struct pc_resp_reader {
    int fd;
    size_t beg, end;       /* unread staged bytes: buf[beg, end) */
    const char *why;       /* after a failure: what went wrong (static text) */
    int sys_errno;         /* after an I/O failure: errno */
    uint8_t buf[PC_RESP_STAGE];
} pc_resp_reader;

enum { PC_RESP_NIL = -1, PC_RESP_ERROR_REPLY = -2, PC_RESP_FAIL = -3 };

void pc_resp_reader_init(pc_resp_reader *r, int fd);
/* The next reply's header: its bulk length (>= 0), PC_RESP_NIL, PC_RESP_ERROR_REPLY
 * (the error text into msg), or PC_RESP_FAIL (I/O, timeout, protocol; r->why says which). */
int64_t pc_resp_next_bulk(pc_resp_reader *r, char *msg, size_t cap);
/* The next n bytes of the current bulk into dst, then (last) its CRLF; 0 or PC_RESP_FAIL. */
int pc_resp_read(pc_resp_reader *r, void *dst, size_t n);
int pc_resp_skip(pc_resp_reader *r, size_t n);
int pc_resp_crlf(pc_resp_reader *r);
/* Whether every byte received was consumed. */
bool pc_resp_drained(const pc_resp_reader *r);

/* Parses a bulk header line without its CRLF ("$123", "$-1"): 0 and *out, or -1. */
int pc_resp_parse_bulk_len(const char *line, size_t len, int64_t *out);

#endif
