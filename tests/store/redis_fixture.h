/* redis_fixture.h - a Redis server for the tests (tests only).
 *
 * Uses $PC_TEST_REDIS (host:port, which scripts/test.sh exports after starting
 * redis-server on a loopback port); otherwise starts a private redis-server
 * on a free loopback port and stops it at the end. When neither works the
 * caller skips, saying why. Every test works under its own key prefix, so
 * tests running side by side on one server never see each other's keys. */
#ifndef PC_TESTS_REDIS_FIXTURE_H
#define PC_TESTS_REDIS_FIXTURE_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct redis_fixture {
    char addr[64];
    char host[32];
    int port;
    pid_t pid; /* a private server, or 0 */
    char why[256]; /* why no server could be had */
} redis_fixture;

static inline int rf_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static inline redisContext *rf_connect(const redis_fixture *f) {
    struct timeval tv = {.tv_sec = 2};
    redisContext *c = redisConnectWithTimeout(f->host, f->port, tv);
    if (c && c->err) {
        redisFree(c);
        c = NULL;
    }
    return c;
}

static inline int rf_ping(const redis_fixture *f) {
    redisContext *c = rf_connect(f);
    if (!c) return 0;
    redisReply *r = redisCommand(c, "PING");
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* 0 on success; -1 with f->why filled. */
static inline int redis_fixture_start(redis_fixture *f) {
    memset(f, 0, sizeof *f);
    const char *env = getenv("PC_TEST_REDIS");
    if (env && *env) {
        const char *colon = strrchr(env, ':');
        if (!colon || colon == env || (size_t)(colon - env) >= sizeof f->host) {
            snprintf(f->why, sizeof f->why, "PC_TEST_REDIS='%s' is not host:port", env);
            return -1;
        }
        memcpy(f->host, env, (size_t)(colon - env));
        f->port = atoi(colon + 1);
        snprintf(f->addr, sizeof f->addr, "%s", env);
        if (rf_ping(f)) return 0;
        snprintf(f->why, sizeof f->why, "no Redis answers at PC_TEST_REDIS=%s", env);
        return -1;
    }
    snprintf(f->host, sizeof f->host, "127.0.0.1");
    f->port = rf_free_port();
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", f->port);
    char port[16];
    snprintf(port, sizeof port, "%d", f->port);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 1), dup2(null, 2);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
               "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    f->pid = pid;
    for (int i = 0; i < 100; i++) { /* up to 5 s */
        if (rf_ping(f)) return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            f->pid = 0;
            snprintf(f->why, sizeof f->why, "redis-server could not be started (exit %d%s)", WEXITSTATUS(status),
                     WEXITSTATUS(status) == 127 ? ": not installed" : "");
            return -1;
        }
        nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    f->pid = 0;
    snprintf(f->why, sizeof f->why, "redis-server did not answer on port %d within 5 s", f->port);
    return -1;
}

/* Deletes every key under prefix (SCAN, so a shared server is not blocked). */
static inline void redis_fixture_clear(const redis_fixture *f, const char *prefix) {
    redisContext *c = rf_connect(f);
    if (!c) return;
    char cursor[32] = "0", pattern[256];
    snprintf(pattern, sizeof pattern, "%s*", prefix);
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r) freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            redisReply *d = redisCommand(c, "DEL %s", r->element[1]->element[i]->str);
            if (d) freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
}

/* Number of keys under prefix. */
static inline long redis_fixture_count(const redis_fixture *f, const char *prefix) {
    redisContext *c = rf_connect(f);
    if (!c) return -1;
    char pattern[256];
    snprintf(pattern, sizeof pattern, "%s*", prefix);
    redisReply *r = redisCommand(c, "KEYS %s", pattern);
    long n = r && r->type == REDIS_REPLY_ARRAY ? (long)r->elements : -1;
    if (r) freeReplyObject(r);
    redisFree(c);
    return n;
}

static inline void redis_fixture_stop(redis_fixture *f) {
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
}

#endif
