/* scan.h - listing and removing stored entries without a model (the public
 * pc_cache_scan / pc_cache_remove of pcache.h): scan.c walks the disk tier's
 * folders, scan_redis.c the Redis keys under a prefix. */
#ifndef PC_STORE_SCAN_H
#define PC_STORE_SCAN_H

#include "pcache.h"

pc_status pc_cache_scan_redis(const pc_cache_params *p, bool verify, pc_cache_entry_fn fn, void *user, pc_error *err);
pc_status pc_cache_remove_redis(const pc_cache_params *p, const char *manifest_key, pc_error *err);

#endif
