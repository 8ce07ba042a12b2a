#ifndef EMOTIONTAP_CLINUX_SHIM_H
#define EMOTIONTAP_CLINUX_SHIM_H
// epoll is not in Swift's Glibc module; these wrappers also keep its packed union out of Swift.
#include <sys/epoll.h>
#include <errno.h>

static inline int et_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static inline int et_epoll_add(int epfd, int fd) {
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static inline int et_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, 0); }

/// Waits up to timeout_ms; writes the ready descriptors to fds (at most max) and returns their count.
static inline int et_epoll_wait(int epfd, int *fds, int max, int timeout_ms) {
    struct epoll_event events[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < n; i++) fds[i] = events[i].data.fd;
    return n;
}
#endif
