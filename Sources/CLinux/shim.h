#ifndef EMOTIONTAP_CLINUX_SHIM_H
#define EMOTIONTAP_CLINUX_SHIM_H
// epoll is not in Swift's Glibc module; these wrappers also keep its packed union out of Swift.
#include <sys/epoll.h>
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

static inline int et_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static inline int et_epoll_add(int epfd, int fd) {
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static inline int et_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, 0); }

#include <sys/eventfd.h>
/// A non-blocking eventfd: how a stream leg's producer (a TCP or WebSocket connection) wakes the
/// worker that owns the leg, through the same epoll set as the RTP sockets.
static inline int et_eventfd_create(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }
static inline void et_eventfd_signal(int fd) { uint64_t one = 1; (void)!write(fd, &one, sizeof one); }
static inline void et_eventfd_clear(int fd) { uint64_t n; (void)!read(fd, &n, sizeof n); }

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
/// Names the calling thread as `top -H`, `ps -L` and perf show it (15 bytes at most).
static inline void et_set_thread_name(const char *name) { (void)prctl(PR_SET_NAME, name, 0, 0, 0); }
/// Sets the calling thread's nice value (Linux keeps one per thread); 0 or errno.
static inline int et_set_thread_nice(int nice) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) == 0 ? 0 : errno;
}

#include <malloc.h>
/// Gives memory glibc's arenas hold free back to the system (after legs end).
static inline void et_malloc_trim(void) { (void)malloc_trim(0); }

/// Waits up to timeout_ms; writes the ready descriptors to fds (at most max) and returns their count.
static inline int et_epoll_wait(int epfd, int *fds, int max, int timeout_ms) {
    struct epoll_event events[1024];
    if (max > 1024) max = 1024;
    int n = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < n; i++) fds[i] = events[i].data.fd;
    return n;
}

#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <netinet/in.h>

/// struct mmsghdr without _GNU_SOURCE (same layout as the kernel's).
struct et_mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };

/// Sends `count` datagrams in batches of up to 64 with sendmmsg(2): datagram i is
/// bytes[offsets[i] ..< offsets[i] + lengths[i]] to addr_be:ports[i] (network byte order address, host-order port).
/// Returns how many were sent.
static inline int et_send_batch(int fd, const uint8_t *bytes, const int *offsets, const int *lengths,
                                const uint16_t *ports, uint32_t addr_be, int count) {
    struct et_mmsghdr msgs[64];
    struct iovec iov[64];
    struct sockaddr_in to[64];
    int sent = 0;
    while (sent < count) {
        int n = count - sent < 64 ? count - sent : 64;
        memset(msgs, 0, sizeof(struct et_mmsghdr) * n);
        for (int i = 0; i < n; i++) {
            int k = sent + i;
            iov[i].iov_base = (void *)(bytes + offsets[k]);
            iov[i].iov_len = (size_t)lengths[k];
            memset(&to[i], 0, sizeof(to[i]));
            to[i].sin_family = AF_INET;
            to[i].sin_port = htons(ports[k]);
            to[i].sin_addr.s_addr = addr_be;
            msgs[i].msg_hdr.msg_name = &to[i];
            msgs[i].msg_hdr.msg_namelen = sizeof(to[i]);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        long r = syscall(SYS_sendmmsg, fd, msgs, (unsigned int)n, 0);
        if (r <= 0) {
            // ECONNREFUSED from an earlier datagram: skip one and go on.
            if (r < 0 && errno == ECONNREFUSED) { sent += 1; continue; }
            return sent;
        }
        sent += (int)r;
    }
    return sent;
}

/// Asks the kernel to stamp each datagram with its arrival time (SO_TIMESTAMPNS, CLOCK_REALTIME).
static inline int et_enable_receive_timestamps(int fd) {
    int on = 1;
    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}

/// One datagram into buf (recvmsg), with the kernel's arrival stamp in *sec / *nsec (0 when the socket
/// gave none). Returns its length, or -1 (errno) as recv does.
static inline long et_recv_stamped(int fd, void *buf, size_t len, int64_t *sec, int64_t *nsec) {
    struct iovec iov = { buf, len };
    uint64_t control[8];
    struct msghdr h;
    memset(&h, 0, sizeof h);
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = control;
    h.msg_controllen = sizeof control;
    long n = recvmsg(fd, &h, 0);
    *sec = 0;
    *nsec = 0;
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c != NULL; c = CMSG_NXTHDR(&h, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
            struct timespec t;
            memcpy(&t, CMSG_DATA(c), sizeof t);
            *sec = t.tv_sec;
            *nsec = t.tv_nsec;
        }
    }
    return n;
}
#endif
