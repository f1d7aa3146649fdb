/* prefetch.h - a cursor that asks for a thread's coming weight bytes while it waits.
 *
 * A team member's weight bytes for a token are fixed in advance: its share of
 * each product, in the order it computes them (pc_matmul_part_spans). Where
 * its thread would otherwise idle (the CPU backend: between two team jobs,
 * while attention runs; at the team's barriers it gained nothing), the
 * cursor asks for the next cache lines of that sequence,
 * so they move while the memory bus would not carry weights, and the product
 * later finds them in its cache. pc_pf_aim keeps the cursor within `ahead`
 * bytes of where the member computes: ahead of that, lines would leave the
 * cache before use. Prefetch only: no computed bit depends on the cursor. */
#ifndef PC_KERNELS_CPU_PREFETCH_H
#define PC_KERNELS_CPU_PREFETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/cpu/matmul.h"

typedef struct pc_pf_cursor {
    const pc_wspan *spans; /* the sequence, in order (not owned) */
    int n;
    int i;           /* the span the cursor is in */
    size_t off;      /* the next line of span i, bytes from its first line */
    int stop;        /* the limit: span stop, byte stop_off from its first line */
    size_t stop_off;
} pc_pf_cursor;

/* A cursor at the start of spans[0 .. n), with no lines to ask for until aimed. */
void pc_pf_init(pc_pf_cursor *c, const pc_wspan *spans, int n);
/* The member is about to compute from the start of span `at`: the cursor
 * may run until `ahead` bytes past it, and moves to it if it is behind or
 * past that limit (left there by an earlier pass over the sequence). */
void pc_pf_aim(pc_pf_cursor *c, int at, size_t ahead);
/* The address of the next line to ask for (advancing past it), or NULL at the limit. */
const void *pc_pf_next(pc_pf_cursor *c);
/* Asks for up to `lines` lines; false when there was none left to ask for. */
bool pc_pf_step(pc_pf_cursor *c, int lines);

#endif
