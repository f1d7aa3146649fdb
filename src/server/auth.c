/* auth.c - API keys and the tenants they stand for.
 *
 * A request's tenant comes from its key alone (Authorization: Bearer KEY or
 * X-Api-Key: KEY), never from anything else the client sends: the tenant
 * namespaces store keys, schemas and the prefix cache, so a timing or a
 * cached_tokens figure can tell nothing about another tenant's text. Keys are
 * compared in constant time, over every configured key, so the time a
 * refusal takes says nothing about how close a guess was. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

/* 1 when equal; time depends only on the lengths of the candidate and key. */
static int equal_ct(const char *a, size_t na, const char *b, size_t nb) {
    unsigned diff = na != nb;
    for (size_t i = 0; i < na; i++) diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (nb ? nb : 1)];
    return diff == 0;
}

static const char *presented_key(struct MHD_Connection *c, size_t *len) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        h += 7;
        while (*h == ' ') h++;
    } else {
        h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Api-Key");
    }
    *len = h ? strlen(h) : 0;
    return h;
}

int srv_authenticate(const pc_server *s, struct MHD_Connection *c, srv_who *who, srv_api_error *e) {
    if (s->n_keys == 0) {
        *who = (srv_who){.tenant = "", .can_share = true};
        return 0;
    }
    size_t len = 0;
    const char *k = presented_key(c, &len);
    if (!k) {
        srv_api_fail(e, 401, "invalid_request_error", "missing_api_key", NULL,
                     "no API key: send 'Authorization: Bearer KEY' or 'X-Api-Key: KEY'");
        return -1;
    }
    const pc_api_key *found = NULL;
    for (size_t i = 0; i < s->n_keys; i++)
        if (equal_ct(k, len, s->keys[i].key, strlen(s->keys[i].key)) && !found) found = &s->keys[i];
    if (!found) {
        srv_api_fail(e, 401, "invalid_request_error", "invalid_api_key", NULL, "the API key is not valid");
        return -1;
    }
    *who = (srv_who){.tenant = found->tenant, .can_share = found->can_share};
    return 0;
}

/* ---- the key file: one key per line, "KEY TENANT [share] [quota=BYTES]"; # comments ---- */

void pc_api_keys_free(pc_api_key *keys, size_t n) {
    for (size_t i = 0; keys && i < n; i++) {
        free((char *)keys[i].key);
        free((char *)keys[i].tenant);
    }
    free(keys);
}

/* "4096", "64K", "512M", "2G", "1T" (powers of 1024); -1 when it is not one. */
static int parse_bytes(const char *v, size_t *out) {
    char *end = NULL;
    if (*v < '0' || *v > '9') return -1;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    int shift = 0;
    if (errno) return -1;
    if (*end) {
        const char *units = "KMGT", *u = strchr(units, *end >= 'a' ? *end - 32 : *end);
        if (!u || !*u || end[1]) return -1;
        shift = 10 * (int)(u - units + 1);
    }
    if (x == 0 || x > (SIZE_MAX >> shift)) return -1;
    *out = (size_t)x << shift;
    return 0;
}

/* The optional words after TENANT: "share", "quota=BYTES", each at most once. */
static pc_status parse_key_flags(const char *path, size_t line_no, char **save, pc_api_key *out, pc_error *err) {
    bool quota = false;
    for (char *w; (w = strtok_r(NULL, " \t", save));) {
        if (!strcmp(w, "share") && !out->can_share) {
            out->can_share = true;
        } else if (!strncmp(w, "quota=", 6) && !quota) {
            if (parse_bytes(w + 6, &out->quota))
                return pc_fail(err, PC_ERR_FORMAT, "%s:%zu: '%.40s': a quota is a positive number of bytes (4096, 64K, 512M, 2G)",
                               path, line_no, w);
            quota = true;
        } else {
            return pc_fail(err, PC_ERR_FORMAT, "%s:%zu: '%.40s': expected 'KEY TENANT [share] [quota=BYTES]'", path,
                           line_no, w);
        }
    }
    return PC_OK;
}

static pc_status parse_key_line(const char *path, size_t line_no, char *line, pc_api_key *out, pc_error *err) {
    char *save = NULL, *key = strtok_r(line, " \t", &save), *tenant = strtok_r(NULL, " \t", &save);
    if (!tenant)
        return pc_fail(err, PC_ERR_FORMAT, "%s:%zu: expected 'KEY TENANT [share] [quota=BYTES]'", path, line_no);
    pc_status st = parse_key_flags(path, line_no, &save, out, err);
    if (st != PC_OK) return st;
    if (strlen(key) < 8) return pc_fail(err, PC_ERR_FORMAT, "%s:%zu: a key must have at least 8 characters", path, line_no);
    if (strchr(tenant, '/') || strlen(tenant) > 200) /* schemas are registered as TENANT/NAME */
        return pc_fail(err, PC_ERR_FORMAT, "%s:%zu: a tenant has at most 200 characters and no '/'", path, line_no);
    out->key = strdup(key);
    out->tenant = strdup(tenant);
    if (!out->key || !out->tenant) return pc_fail(err, PC_ERR_NOMEM, "out of memory reading %s", path);
    return PC_OK;
}

pc_status pc_api_keys_load(const char *path, pc_api_key **keys, size_t *n, pc_error *err) {
    *keys = NULL;
    *n = 0;
    char *text = NULL;
    size_t len = 0;
    pc_status st = pc_file_read(path, (size_t)1 << 20, 0, &text, &len, err);
    if (st != PC_OK) return st;
    size_t cap = 0, line_no = 0;
    for (char *line = text, *next; line && *line && st == PC_OK; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        line[strcspn(line, "\r#")] = '\0';
        if (strspn(line, " \t") == strlen(line)) continue;
        pc_api_key *a = pc_array_reserve(*keys, &cap, *n + 1, sizeof **keys);
        if (!a) {
            st = pc_fail(err, PC_ERR_NOMEM, "out of memory reading %s", path);
            break;
        }
        *keys = a;
        memset(&a[*n], 0, sizeof a[*n]);
        st = parse_key_line(path, line_no, line, &a[*n], err);
        (*n)++;
    }
    free(text);
    if (st == PC_OK && *n == 0) st = pc_fail(err, PC_ERR_FORMAT, "%s: no keys", path);
    if (st != PC_OK) {
        pc_api_keys_free(*keys, *n);
        *keys = NULL;
        *n = 0;
    }
    return st;
}
