/* piece_text.h - the text of one piece: a schema's run of text between module,
 * union and parameter boundaries, or a prompt's own text. PML text and chat
 * markers are collected in order; PML's whitespace rule (the prototype's:
 * a leading and a trailing whitespace run each become one space) applies to
 * each run of text between two markers or boundaries - except that where text
 * meets a marker its whitespace goes, since the marker brings its own
 * newlines - and never to a marker. Tokenized with control tokens recognised
 * only inside markers, so no text can forge one.
 *
 * Invariant: out holds exactly what the piece's tokens will be made from;
 * raw holds only text written after the last marker or boundary. */
#ifndef PC_SCHEMA_PIECE_TEXT_H
#define PC_SCHEMA_PIECE_TEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "tokenizer/chat_template.h"
#include "util/buf.h"

typedef struct pc_piece_text {
    pc_chat_text out;      /* compacted text and markers so far */
    pc_buf raw;            /* text written since the last marker or boundary */
    bool raw_after_marker; /* raw follows a marker (else a boundary or the start) */
    bool has;              /* something was added since the piece began */
    uint32_t line, col;    /* where the piece begins */
} pc_piece_text;

/* Adds PML text (as parsed, before compaction) or a marker; line and col
 * locate the piece when this is its first part. False when out of memory. */
bool pc_piece_text_add(pc_piece_text *p, const char *raw, size_t n, uint32_t line, uint32_t col);
bool pc_piece_text_marker(pc_piece_text *p, const char *marker, uint32_t line, uint32_t col);

/* Ends the piece at a boundary: compacts its last run of text and tokenizes
 * the whole (no BOS), appending to out, then starts the next piece empty.
 * Returns PC_OK with nothing added when the piece compacts to nothing. */
pc_status pc_piece_text_end(pc_piece_text *p, const pc_tokenizer *tok, pc_tokens *out, pc_error *err);

void pc_piece_text_free(pc_piece_text *p);

#endif
