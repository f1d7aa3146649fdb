/* test_store_memory.c - the memory tier and the store's fetch/put/release contract.
 *
 *  1. A put entry is fetched back as the very same span (no copy), pinned, and
 *     counted as a hit; an unknown key is a miss.
 *  2. Budget: LRU order decides what goes; a fetched entry becomes most recent.
 *  3. Pins: a pinned entry is never evicted, however far over the budget the
 *     tier goes; once released it goes. A budget smaller than one entry still
 *     serves it while pinned. Removal while pinned keeps the memory valid (ASan
 *     would see a use after free) until the release.
 *  4. Groups: a pinned group is never evicted; a TTL drops the group's entries
 *     when the (test's) clock passes it.
 *  5. A key whose entry does not match what the caller expects (other tokens)
 *     is dropped, logged and read as a miss.
 *  6. Every test ends with stats showing nothing left pinned or leaked. */
#include "store_testlib.h"

static pc_store *open_mem(size_t budget, t_log *log, t_clock *clk) {
    pc_store_config c = t_config(log);
    c.cache.mem_bytes = budget;
    if (clk) {
        c.now_ms = t_clock_fn;
        c.now_user = clk;
    }
    pc_store *s = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_store_open(&c, &s, &err) == PC_OK, "%s", err.msg);
    return s;
}

static pc_store_entry *fetch(pc_store *s, const t_piece *p, pc_kv_source *src) {
    pc_store_desc d = t_desc(p);
    pc_store_entry *e = NULL;
    pc_error err = {0};
    pc_status st = pc_store_fetch(s, &d, &e, src, &err);
    CHECK(st == PC_OK || st == PC_ERR_NOT_FOUND);
    return e;
}

static bool held(pc_store *s, const t_piece *p) { return pc_store_exists(s, &p->key); }

static void check_roundtrip(void) {
    t_log log = {0};
    pc_store *s = open_mem(0, &log, NULL);
    t_piece a = t_piece_make(1, 20, ""), b = t_piece_make(2, 9, "");
    pc_store_entry *e = t_put(s, &a, true);
    const pc_kv_span *span = pc_store_entry_span(e);
    pc_kv_source src = PC_SOURCE_ENCODED;
    pc_store_entry *f = fetch(s, &a, &src);
    CHECK(f == e && pc_store_entry_span(f) == span && src == PC_SOURCE_MEMORY);
    CHECK(t_span_is(span, &a));
    CHECK(fetch(s, &b, NULL) == NULL);
    pc_cache_stats st;
    pc_store_stats(s, &st);
    CHECK(st.tier[0].enabled && !st.tier[1].enabled && !st.tier[2].enabled);
    CHECK_EQ_INT(st.tier[0].hits, 1);
    CHECK_EQ_INT(st.tier[0].misses, 1);
    CHECK_EQ_INT(st.tier[0].entries, 1);
    CHECK_EQ_INT(st.tier[0].bytes, pc_store_payload_bytes(T_LAYERS, T_DIM, 20));
    pc_store_release(s, f);
    pc_store_release(s, e);
    /* a span that is not the entry's shape is refused, and the reference is taken */
    pc_store_desc d = t_desc(&b);
    pc_error err = {0};
    CHECK(pc_store_put(s, &d, t_span(&a), NULL, &err) == PC_ERR_INVALID && strstr(err.msg, "does not fit"));
    CHECK_EQ_INT(log.lines, 0);
    pc_store_close(s);
}

static void check_lru(void) {
    const size_t one = pc_store_payload_bytes(T_LAYERS, T_DIM, 16);
    pc_store *s = open_mem(3 * one, NULL, NULL);
    t_piece p[5];
    for (int i = 0; i < 5; i++) p[i] = t_piece_make(i, 16, "");
    for (int i = 0; i < 3; i++) pc_store_release(s, t_put(s, &p[i], true));
    pc_store_release(s, fetch(s, &p[0], NULL)); /* 0 becomes the most recent: 1 is now the oldest */
    pc_store_release(s, t_put(s, &p[3], true));
    CHECK(held(s, &p[0]) && !held(s, &p[1]) && held(s, &p[2]) && held(s, &p[3]));
    pc_store_release(s, t_put(s, &p[4], true));
    CHECK(held(s, &p[0]) && !held(s, &p[2]) && held(s, &p[3]) && held(s, &p[4]));
    pc_cache_stats st;
    pc_store_stats(s, &st);
    CHECK_EQ_INT(st.tier[0].evictions, 2);
    CHECK_EQ_INT(st.tier[0].entries, 3);
    CHECK(st.tier[0].bytes <= 3 * one && st.tier[0].budget == 3 * one);
    pc_store_close(s);
}

static void check_pins(void) {
    const size_t one = pc_store_payload_bytes(T_LAYERS, T_DIM, 16);
    pc_store *s = open_mem(2 * one, NULL, NULL);
    t_piece p[6];
    for (int i = 0; i < 6; i++) p[i] = t_piece_make(i, 16, "");
    pc_store_entry *pinned[4];
    for (int i = 0; i < 4; i++) pinned[i] = t_put(s, &p[i], true); /* all pinned: twice the budget */
    for (int i = 0; i < 4; i++) CHECK(held(s, &p[i]) && t_span_is(pc_store_entry_span(pinned[i]), &p[i]));
    pc_cache_stats st;
    pc_store_stats(s, &st);
    CHECK_EQ_INT(st.tier[0].evictions, 0);
    CHECK_EQ_INT(st.tier[0].bytes, 4 * one);
    for (int i = 0; i < 4; i++) pc_store_release(s, pinned[i]);
    pc_store_stats(s, &st);
    CHECK_EQ_INT(st.tier[0].entries, 2); /* released: back within the budget, oldest first */
    CHECK(!held(s, &p[0]) && !held(s, &p[1]) && held(s, &p[2]) && held(s, &p[3]));
    pc_store_close(s);

    /* a budget smaller than one entry: served while pinned, gone when released */
    s = open_mem(one / 2, NULL, NULL);
    pc_store_entry *e = t_put(s, &p[5], true);
    pc_store_entry *f = fetch(s, &p[5], NULL);
    CHECK(e && f == e && t_span_is(pc_store_entry_span(f), &p[5]));
    pc_store_release(s, e);
    CHECK(held(s, &p[5]));
    pc_store_release(s, f);
    CHECK(!held(s, &p[5]));

    /* removal while pinned: the holder's memory stays valid until release */
    e = t_put(s, &p[4], true);
    pc_error err = {0};
    CHECK(pc_store_remove(s, &p[4].key, &err) == PC_OK && !held(s, &p[4]));
    CHECK(t_span_is(pc_store_entry_span(e), &p[4]));
    pc_store_release(s, e);
    pc_store_stats(s, &st);
    CHECK_EQ_INT(st.tier[0].entries, 0);
    CHECK_EQ_INT(st.tier[0].bytes, 0);
    pc_store_close(s);
}

static void check_groups(void) {
    const size_t one = pc_store_payload_bytes(T_LAYERS, T_DIM, 16);
    t_clock clk = {.ms = 1000};
    pc_store *s = open_mem(2 * one, NULL, &clk);
    t_piece a = t_piece_make(1, 16, ""), b = t_piece_make(2, 16, ""), c = t_piece_make(3, 16, ""),
            d = t_piece_make(4, 16, "");
    memset(a.group, 0xaa, 32); /* a pinned schema */
    memset(b.group, 0xbb, 32); /* a schema with a TTL */
    pc_error err = {0};
    CHECK(pc_store_set_group(s, a.group, true, 0, &err) == PC_OK);
    CHECK(pc_store_set_group(s, b.group, false, 10, &err) == PC_OK);
    pc_store_release(s, t_put(s, &a, true));
    pc_store_release(s, t_put(s, &b, true));
    pc_store_release(s, t_put(s, &c, true));
    pc_store_release(s, t_put(s, &d, true));
    CHECK_MSG(held(s, &a), "an entry of a pinned group was evicted");
    CHECK(held(s, &d) && !held(s, &b) && !held(s, &c));
    pc_store_release(s, t_put(s, &b, true)); /* the oldest unpinned (d) goes to make room */
    CHECK(held(s, &a) && held(s, &b) && !held(s, &d));
    clk.ms += 9000;
    CHECK(held(s, &b));
    clk.ms += 2000; /* past b's TTL */
    CHECK(!held(s, &b) && fetch(s, &b, NULL) == NULL);
    pc_store_release(s, t_put(s, &b, true)); /* an expired schema keeps nothing in memory */
    CHECK(!held(s, &b));
    CHECK(pc_store_set_group(s, b.group, false, 10, &err) == PC_OK); /* a new TTL restarts the clock */
    pc_store_release(s, t_put(s, &b, true));
    CHECK(held(s, &b));
    CHECK(pc_store_set_group(s, a.group, false, 0, &err) == PC_OK); /* unpinned: evictable again */
    pc_store_release(s, t_put(s, &c, true));
    pc_store_release(s, t_put(s, &d, true));
    CHECK(!held(s, &a));
    pc_store_close(s);
}

static void check_mismatch(void) {
    t_log log = {0};
    pc_store *s = open_mem(0, &log, NULL);
    t_piece a = t_piece_make(1, 12, "");
    pc_store_release(s, t_put(s, &a, true));
    t_piece other = a;
    other.tokens[3] ^= 1; /* same key, other tokens: a collision or a caller's bug, never served */
    CHECK(fetch(s, &other, NULL) == NULL);
    CHECK(!held(s, &a));
    CHECK_MSG(log.lines == 1 && strstr(log.last, "token ids differ") && strstr(log.last, "test:piece#1"), "log: %s",
              log.last);
    pc_cache_stats st;
    pc_store_stats(s, &st);
    CHECK_EQ_INT(st.tier[0].rejected, 1);
    pc_store_close(s);
}

int main(void) {
    check_roundtrip();
    check_lru();
    check_pins();
    check_groups();
    check_mismatch();
    return check_report();
}
