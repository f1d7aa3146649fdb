/* tcp_proxy.h - a loopback TCP relay that makes a server die or stall on cue
 * (tests only): the Redis tier talks to Redis through it, and the test cuts
 * the connection after a number of bytes in either direction (Redis dying
 * mid-write or mid-read) or stops relaying replies (Redis hanging). New
 * connections are relayed again afterwards, as a restarted server would be.
 * One thread; one relayed connection at a time (the tier keeps one). */
#ifndef PC_TESTS_TCP_PROXY_H
#define PC_TESTS_TCP_PROXY_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct tcp_proxy {
    int listen_fd, wake[2];
    int port, upstream_port;
    pthread_t thread;
    _Atomic long up_left, down_left; /* bytes to relay before cutting; < 0: no limit */
    _Atomic int stall;               /* 1: hold the server's replies */
    _Atomic int stop;
    _Atomic int cuts;                /* connections cut so far */
    char addr[64];
} tcp_proxy;

static inline int tp_connect_up(tcp_proxy *p) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->upstream_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Relays one read from src to dst under a byte limit; 0 to go on, -1 when the pair is done. */
static inline int tp_relay(int src, int dst, _Atomic long *left) {
    char buf[65536];
    ssize_t n = read(src, buf, sizeof buf);
    if (n <= 0) return -1;
    long l = atomic_load(left);
    int cut = 0;
    if (l >= 0 && n >= l) {
        n = l;
        cut = 1;
    }
    if (l >= 0) atomic_store(left, l - n);
    for (ssize_t off = 0; off < n;) {
        ssize_t w = send(dst, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w <= 0) return -1;
        off += w;
    }
    return cut ? -1 : 0;
}

static inline void *tp_main(void *arg) {
    tcp_proxy *p = arg;
    int cli = -1, up = -1;
    while (!atomic_load(&p->stop)) {
        struct pollfd fds[4] = {{p->listen_fd, POLLIN, 0}, {p->wake[0], POLLIN, 0}, {cli, POLLIN, 0},
                                {atomic_load(&p->stall) ? -1 : up, POLLIN, 0}};
        if (poll(fds, 4, 50) < 0) break;
        if (fds[1].revents) {
            char c;
            if (read(p->wake[0], &c, 1) < 0) break;
        }
        if (fds[0].revents & POLLIN) {
            int fd = accept(p->listen_fd, NULL, NULL);
            if (fd >= 0) {
                if (cli >= 0) close(cli), close(up);
                cli = fd;
                up = tp_connect_up(p);
                if (up < 0) close(cli), cli = -1;
            }
            continue;
        }
        int done = 0;
        if (cli >= 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) done = tp_relay(cli, up, &p->up_left) != 0;
        if (!done && up >= 0 && (fds[3].revents & (POLLIN | POLLHUP | POLLERR))) done = tp_relay(up, cli, &p->down_left) != 0;
        if (done) {
            close(cli);
            close(up);
            cli = up = -1;
            atomic_fetch_add(&p->cuts, 1);
        }
    }
    if (cli >= 0) close(cli), close(up);
    return NULL;
}

/* 0 on success: p->addr is "127.0.0.1:<port>" relaying to upstream_port. */
static inline int tcp_proxy_start(tcp_proxy *p, int upstream_port) {
    memset(p, 0, sizeof *p);
    atomic_init(&p->up_left, -1);
    atomic_init(&p->down_left, -1);
    p->upstream_port = upstream_port;
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(p->listen_fd, 4) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&a, &len) != 0 || pipe(p->wake) != 0)
        return -1;
    p->port = ntohs(a.sin_port);
    snprintf(p->addr, sizeof p->addr, "127.0.0.1:%d", p->port);
    return pthread_create(&p->thread, NULL, tp_main, p) == 0 ? 0 : -1;
}

/* Cut the relayed connection after `bytes` more bytes towards the server (up) or the client. */
static inline void tcp_proxy_cut_up(tcp_proxy *p, long bytes) { atomic_store(&p->up_left, bytes); }
static inline void tcp_proxy_cut_down(tcp_proxy *p, long bytes) { atomic_store(&p->down_left, bytes); }
static inline void tcp_proxy_heal(tcp_proxy *p) {
    atomic_store(&p->up_left, -1);
    atomic_store(&p->down_left, -1);
    atomic_store(&p->stall, 0);
    if (write(p->wake[1], "w", 1) < 0) { /* the poll wakes within 50 ms anyway */
    }
}
static inline void tcp_proxy_stall(tcp_proxy *p) { atomic_store(&p->stall, 1); }

static inline void tcp_proxy_stop(tcp_proxy *p) {
    atomic_store(&p->stop, 1);
    if (write(p->wake[1], "s", 1) < 0) {
    }
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
    close(p->wake[0]);
    close(p->wake[1]);
}

#endif
