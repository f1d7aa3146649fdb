/* store_key.c - content keys of store entries.
 *
 * key = SHA-256("pcache-store-key", version, model, schema, path, config,
 *               start, n, elem, tenant), every field length-prefixed (so no two
 * different inputs serialize alike) and integers little-endian: the same key
 * in every process and on every machine, never seeded. The tenant is part of
 * the key so one tenant can neither read nor probe another's entries. */
#include <string.h>

#include "store/store.h"
#include "util/error.h"
#include "util/sha256.h"

pc_status pc_store_key_derive(const pc_store_key_parts *p, pc_store_key *out, pc_error *err) {
    static const char DOMAIN[] = "pcache-store-key";
    pc_sha256 h;
    pc_sha256_init(&h);
    pc_sha256_field(&h, DOMAIN, sizeof DOMAIN - 1);
    pc_sha256_u64(&h, PC_STORE_FORMAT_VERSION);
    pc_sha256_field(&h, p->model, 32);
    pc_sha256_field(&h, p->schema, 32);
    pc_sha256_field(&h, p->path, strlen(p->path));
    pc_sha256_field(&h, p->config, strlen(p->config));
    pc_sha256_u64(&h, (uint64_t)(uint32_t)p->start);
    pc_sha256_u64(&h, (uint64_t)(uint32_t)p->n);
    pc_sha256_u64(&h, p->elem);
    const char *tenant = p->tenant ? p->tenant : "";
    pc_sha256_field(&h, tenant, strlen(tenant));
    if (pc_sha256_final(&h, out->b) != 0)
        return pc_fail(err, PC_ERR_NOMEM, "out of memory hashing the store key of '%s'", p->path);
    return PC_OK;
}

void pc_store_key_hex(const pc_store_key *k, char out[65]) { pc_hex(k->b, sizeof k->b, out); }

int pc_store_key_parse(const char *hex, pc_store_key *out) {
    if (strnlen(hex, 65) != 64) return -1;
    return pc_unhex(hex, 32, out->b);
}
