/* piece_text.c - a piece's text: PML text runs compacted between chat
 * markers, tokenized with control tokens only from markers (see piece_text.h). */
#include "schema/piece_text.h"

#include <stdlib.h>

#include "pml/text.h"
#include "util/error.h"

static void mark_start(pc_piece_text *p, uint32_t line, uint32_t col) {
    if (p->has) return;
    p->has = true;
    p->line = line;
    p->col = col;
}

/* Moves raw into out, compacted: a side that meets a marker loses its whitespace. */
static bool close_run(pc_piece_text *p, bool before_marker) {
    if (p->raw.len == 0) return true;
    char *c = malloc(p->raw.len + 1);
    if (!c) return false;
    size_t n = pc_pml_compact_sides(p->raw.data, p->raw.len, !p->raw_after_marker, !before_marker, c);
    bool ok = pc_chat_text_content(&p->out, c, n);
    free(c);
    pc_buf_clear(&p->raw);
    return ok;
}

bool pc_piece_text_add(pc_piece_text *p, const char *raw, size_t n, uint32_t line, uint32_t col) {
    mark_start(p, line, col);
    return pc_buf_append(&p->raw, raw, n);
}

/* An empty marker (the user turn that continues a Llama-2 or Gemma system
 * turn) still ends a turn's text and starts the next: whitespace meeting it
 * goes as at any marker. */
bool pc_piece_text_marker(pc_piece_text *p, const char *marker, uint32_t line, uint32_t col) {
    mark_start(p, line, col);
    if (!close_run(p, true) || !pc_chat_text_marker(&p->out, marker)) return false;
    p->raw_after_marker = true;
    return true;
}

pc_status pc_piece_text_end(pc_piece_text *p, const pc_tokenizer *tok, pc_tokens *out, pc_error *err) {
    pc_status st = close_run(p, false) ? PC_OK : pc_fail(err, PC_ERR_NOMEM, "out of memory building text");
    if (st == PC_OK && p->out.text.len) st = pc_chat_text_tokenize(tok, &p->out, false, out, err);
    pc_buf_clear(&p->out.text);
    p->out.n_markers = 0;
    p->raw_after_marker = false;
    p->has = false;
    return st;
}

void pc_piece_text_free(pc_piece_text *p) {
    pc_chat_text_free(&p->out);
    pc_buf_free(&p->raw);
}
