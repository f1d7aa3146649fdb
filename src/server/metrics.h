/* metrics.h - the server's counters, rendered as Prometheus text (/metrics).
 *
 * Every counter is an atomic a connection thread bumps without a lock; the
 * renderer reads each on its own, so a scrape is a near-instant snapshot
 * rather than a consistent one, as Prometheus client libraries give. */
#ifndef PC_SERVER_METRICS_H
#define PC_SERVER_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "pcache.h"
#include "util/buf.h"

typedef enum srv_endpoint {
    SRV_EP_CHAT = 0, SRV_EP_COMPLETIONS, SRV_EP_SCHEMAS, SRV_EP_MODELS, SRV_EP_HEALTH, SRV_EP_METRICS, SRV_EP_CACHE,
    SRV_EP_OTHER, SRV_N_EP
} srv_endpoint;

enum { SRV_TTFT_BUCKETS = 12 };

typedef struct srv_metrics {
    _Atomic uint64_t requests[SRV_N_EP];
    _Atomic uint64_t status_4xx, status_5xx, rejected_busy, disconnects;
    _Atomic uint64_t prompt_tokens, cached_prompt_tokens, generated_tokens;
    _Atomic uint64_t prefix_queries, prefix_hits, prefix_hit_tokens;
    _Atomic uint64_t ttft_buckets[SRV_TTFT_BUCKETS]; /* cumulative counts are made when rendering */
    _Atomic uint64_t ttft_count, ttft_sum_us;
} srv_metrics;

void srv_metrics_ttft(srv_metrics *m, double ms);
/* Appends the exposition text: the counters above, the scheduler's state
 * and the module store's tiers. false when out of memory. */
bool srv_metrics_render(const srv_metrics *m, const pc_sched_stats *sched, const pc_cache_stats *store, pc_buf *out);

#endif
