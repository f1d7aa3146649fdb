/* metrics.c - counting and the Prometheus text exposition format (version
 * 0.0.4): "# HELP", "# TYPE", then "name{labels} value" lines. */
#include "server/metrics.h"

#include <stddef.h>
#include <stdio.h>

/* TTFT bucket bounds in seconds (le), the last one +Inf. */
static const double TTFT_LE[SRV_TTFT_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 1e300};

void srv_metrics_ttft(srv_metrics *m, double ms) {
    const double s = ms / 1e3;
    int b = 0;
    while (b < SRV_TTFT_BUCKETS - 1 && s > TTFT_LE[b]) b++;
    atomic_fetch_add(&m->ttft_buckets[b], 1);
    atomic_fetch_add(&m->ttft_count, 1);
    atomic_fetch_add(&m->ttft_sum_us, (uint64_t)(ms * 1e3 > 0 ? ms * 1e3 : 0));
}

static bool counter(pc_buf *o, const char *name, const char *help, uint64_t v) {
    return pc_buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)v);
}

static bool gauge(pc_buf *o, const char *name, const char *help, double v) {
    return pc_buf_printf(o, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static bool requests(const srv_metrics *m, pc_buf *o) {
    static const char *names[SRV_N_EP] = {"chat", "completions", "schemas", "models", "health", "metrics", "cache", "other"};
    bool ok = pc_buf_puts(o, "# HELP pcache_requests_total HTTP requests by endpoint.\n"
                             "# TYPE pcache_requests_total counter\n");
    for (int i = 0; i < SRV_N_EP; i++)
        ok = ok && pc_buf_printf(o, "pcache_requests_total{endpoint=\"%s\"} %llu\n", names[i],
                                 (unsigned long long)atomic_load(&m->requests[i]));
    return ok;
}

static bool ttft(const srv_metrics *m, pc_buf *o) {
    bool ok = pc_buf_puts(o, "# HELP pcache_ttft_seconds Time from a request's start to its first token.\n"
                             "# TYPE pcache_ttft_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < SRV_TTFT_BUCKETS; b++) {
        cum += atomic_load(&m->ttft_buckets[b]);
        if (b == SRV_TTFT_BUCKETS - 1)
            ok = ok && pc_buf_printf(o, "pcache_ttft_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        else
            ok = ok && pc_buf_printf(o, "pcache_ttft_seconds_bucket{le=\"%g\"} %llu\n", TTFT_LE[b], (unsigned long long)cum);
    }
    return ok && pc_buf_printf(o, "pcache_ttft_seconds_sum %.6f\npcache_ttft_seconds_count %llu\n",
                               (double)atomic_load(&m->ttft_sum_us) / 1e6, (unsigned long long)atomic_load(&m->ttft_count));
}

static unsigned long long field_of(const pc_cache_tier_stats *t, size_t offset) {
    return (unsigned long long)*(const uint64_t *)((const char *)t + offset);
}

/* One labelled series per enabled tier of the module store, the device tier
 * (GPU backends) as tier="gpu". */
static bool per_tier(pc_buf *o, const pc_cache_stats *cs, const char *name, const char *type, const char *help,
                     size_t offset) {
    bool ok = pc_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (int t = 0; ok && t < PC_N_TIERS; t++)
        if (cs->tier[t].enabled)
            ok = pc_buf_printf(o, "%s{tier=\"%s\"} %llu\n", name, pc_kv_source_name((pc_kv_source)t),
                               field_of(&cs->tier[t], offset));
    if (ok && cs->gpu.enabled) ok = pc_buf_printf(o, "%s{tier=\"gpu\"} %llu\n", name, field_of(&cs->gpu, offset));
    return ok;
}

static bool store(pc_buf *o, const pc_cache_stats *cs) {
#define TIER(name, type, help, field) per_tier(o, cs, name, type, help, offsetof(pc_cache_tier_stats, field))
    return TIER("pcache_store_hits_total", "counter", "Module store look-ups that found a usable entry.", hits) &&
           TIER("pcache_store_misses_total", "counter", "Module store look-ups that found none.", misses) &&
           TIER("pcache_store_entries", "gauge", "Entries held.", entries) &&
           TIER("pcache_store_bytes", "gauge", "Bytes held.", bytes) &&
           TIER("pcache_store_budget_bytes", "gauge", "Byte budget (0: none).", budget) &&
           TIER("pcache_store_evictions_total", "counter", "Entries dropped to stay within the budget.", evictions) &&
           TIER("pcache_store_rejected_total", "counter", "Entries dropped for a bad checksum or another mismatch.",
                rejected) &&
           TIER("pcache_store_writes_total", "counter", "Entries written (gpu: copies uploaded from host memory).",
                writes) &&
           TIER("pcache_store_errors_total", "counter", "I/O or connection failures (gpu: copies the device could not make).",
                errors);
#undef TIER
}

bool srv_metrics_render(const srv_metrics *m, const pc_sched_stats *sc, const pc_cache_stats *cs, pc_buf *o) {
    bool ok = requests(m, o) && ttft(m, o);
    ok = ok && counter(o, "pcache_responses_4xx_total", "Requests answered with a client error.", atomic_load(&m->status_4xx));
    ok = ok && counter(o, "pcache_responses_5xx_total", "Requests answered with a server error.", atomic_load(&m->status_5xx));
    ok = ok && counter(o, "pcache_rejected_busy_total", "Requests refused with 503 because the queue was full.",
                       atomic_load(&m->rejected_busy));
    ok = ok && counter(o, "pcache_client_disconnects_total", "Requests cancelled because their client went away.",
                       atomic_load(&m->disconnects));
    ok = ok && counter(o, "pcache_prompt_tokens_total", "Prompt tokens of completed requests, cached and computed.",
                       atomic_load(&m->prompt_tokens));
    ok = ok && counter(o, "pcache_prompt_tokens_cached_total", "Prompt tokens reused from a cache, not computed.",
                       atomic_load(&m->cached_prompt_tokens));
    ok = ok && counter(o, "pcache_generated_tokens_total", "Tokens generated.", atomic_load(&m->generated_tokens));
    ok = ok && counter(o, "pcache_prefix_cache_queries_total", "Plain prompts looked up in the prefix cache.",
                       atomic_load(&m->prefix_queries));
    ok = ok && counter(o, "pcache_prefix_cache_hits_total", "Plain prompts that reused at least one cached block.",
                       atomic_load(&m->prefix_hits));
    ok = ok && counter(o, "pcache_prefix_cache_hit_tokens_total", "Prompt tokens reused from the prefix cache.",
                       atomic_load(&m->prefix_hit_tokens));
    ok = ok && gauge(o, "pcache_requests_active", "Requests prefilling or decoding.", sc->active);
    ok = ok && gauge(o, "pcache_queue_depth", "Requests waiting for a slot.", sc->queued);
    ok = ok && counter(o, "pcache_batch_steps_total", "Batches run by the scheduler.", sc->steps);
    ok = ok && counter(o, "pcache_batch_rows_total", "Rows (tokens) in those batches.", sc->rows);
    return ok && store(o, cs);
}
