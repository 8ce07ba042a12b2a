#ifndef EMOTIONTAP_CORTP_SHIM_H
#define EMOTIONTAP_CORTP_SHIM_H
#include <ortp/ortp.h>
#include <arpa/inet.h>
#include <unistd.h>

// oRTP exposes these as function-like macros, which Swift cannot call.
static inline uint16_t et_rtp_get_seqnumber(const mblk_t *m) { return rtp_get_seqnumber(m); }
static inline uint32_t et_rtp_get_timestamp(const mblk_t *m) { return rtp_get_timestamp(m); }
static inline uint32_t et_rtp_get_ssrc(const mblk_t *m) { return rtp_get_ssrc(m); }
static inline int et_rtp_get_payload_type(const mblk_t *m) { return rtp_get_payload_type(m); }
static inline int et_rtp_get_markbit(const mblk_t *m) { return rtp_get_markbit(m); }

// Swift 6 cannot take the address of a C global.
static inline RtpProfile *et_av_profile(void) { return &av_profile; }

// The "ortp" domain macro expands to "bctbx" outside the library, so set the mask by name.
static inline void et_ortp_set_log_mask(int mask) { bctbx_set_log_level_mask("ortp", mask); }

// Packets oRTP has already read from the socket and still holds: a drain stops when this is zero
// instead of asking once more (each ask costs a recvmsg that returns EAGAIN).
static inline int et_rtp_session_queued(const RtpSession *s) { return s->rtp.rq.q_mcount; }

// RTCP is off (see RTPReceiveSession), but oRTP still binds an RTCP socket and polls it through its
// transport on every receive: one more fd per leg and one more recvmsg per wake. Close the socket and
// park the transport (oRTP skips RTCP when it has neither); put it back before destroying the session.
static inline RtpTransport *et_rtp_session_detach_rtcp(RtpSession *s) {
    if (s->rtcp.gs.socket != (ortp_socket_t)-1) { close(s->rtcp.gs.socket); s->rtcp.gs.socket = (ortp_socket_t)-1; }
    RtpTransport *t = s->rtcp.gs.tr;
    s->rtcp.gs.tr = NULL;
    return t;
}
static inline void et_rtp_session_reattach_rtcp(RtpSession *s, RtpTransport *t) { s->rtcp.gs.tr = t; }

// Optional playout delay (rtp.jitter_buffer_ms), with oRTP's own jitter buffer:
// permissive mode returns every packet once its time has come (none is skipped as "too old"), and a
// timestamp jump or an SSRC switch restarts the timing, as mediastreamer2 does.
static inline void et_rtp_session_set_permissive(RtpSession *s, int yes) { s->permissive = yes; }
static inline void et_rtp_session_resync_on_jumps(RtpSession *s) {
    rtp_session_signal_connect(s, "timestamp_jump", (RtpCallback)rtp_session_resync, NULL);
}
// Every leg: a new SSRC restarts oRTP's sequence state, or the new stream's packets, numbered from an
// unrelated start, are taken for old ones and discarded until its numbers pass the old stream's.
static inline void et_rtp_session_resync_on_ssrc_change(RtpSession *s) {
    rtp_session_signal_connect(s, "ssrc_changed", (RtpCallback)rtp_session_resync, NULL);
}
static inline PayloadType *et_payload_type_opus(void) { return &payload_type_opus; }

// oRTP's per-session buffer pool (one buffer per datagram read, kept for reuse) only grows: after a
// backlog of N packets the leg keeps N buffers for good. Past `keep`, hand the pool back: its buffers
// are reference counted, so one still held (queued, or with the caller) is freed when its holder lets go.
static inline int et_rtp_session_trim_buffers(RtpSession *s, int keep) {
    msgb_allocator_t *a = &s->rtp.gs.allocator;
    int n = a->q.q_mcount;
    if (n <= keep) return 0;
    msgb_allocator_uninit(a);
    msgb_allocator_init(a);
    return n;
}
// Batched reads: an endpoint transport under oRTP's meta transport that takes up to ET_BATCH datagrams
// from the socket with one recvmmsg(2) and hands them to oRTP one at a time, as oRTP's own read would
// (payload into the buffer, sender address, SO_TIMESTAMP arrival time). oRTP reads until a read would
// block; a short batch means the socket was empty, so the read after its last datagram answers EAGAIN
// without a syscall. A steady leg read every 100 ms costs one syscall per read instead of one per packet
// and one more. The batch memory is the draining thread's (et_recv_endpoint_begin), not the leg's.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define ET_BATCH 16
/// struct mmsghdr without _GNU_SOURCE (same layout as the kernel's).
struct et_rtp_mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };

typedef struct et_recv_batch {
    struct et_rtp_mmsghdr msgs[ET_BATCH];
    struct iovec iov[ET_BATCH];
    struct sockaddr_storage names[ET_BATCH];
    uint64_t control[ET_BATCH][16];
    uint8_t data[ET_BATCH][UDP_MAX_SIZE];
} et_recv_batch;

typedef struct et_recv_endpoint {
    int fd;
    et_recv_batch *batch;  // the draining thread's; NULL outside a drain (then nothing is read)
    int next, count, more;
    uint64_t syscalls;     // recvmmsg calls, for tests and diagnostics
    uint64_t datagrams;    // datagrams taken from the socket, whatever oRTP then made of them
} et_recv_endpoint;

static inline et_recv_batch *et_recv_batch_new(void) { return (et_recv_batch *)calloc(1, sizeof(et_recv_batch)); }
static inline void et_recv_batch_free(et_recv_batch *b) { free(b); }

static inline void et_copy_timestamp(struct msghdr *h, mblk_t *msg) {
    msg->timestamp.tv_sec = 0;
    msg->timestamp.tv_usec = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP) {
            memcpy(&msg->timestamp, CMSG_DATA(c), sizeof(struct timeval));
        }
    }
}

static inline int et_recv_endpoint_recvfrom(RtpTransport *t, mblk_t *msg, int flags, struct sockaddr *from,
                                            socklen_t *fromlen) {
    et_recv_endpoint *e = (et_recv_endpoint *)t->data;
    size_t room = (size_t)(dblk_lim(msg->b_datap) - msg->b_wptr);
    et_recv_batch *b = e->batch;
    (void)flags;
    // Only a drain reads (RTPReceiveSession.drain): anything else finds the socket "empty", and what it
    // holds waits there for the leg's next drain.
    if (b == NULL) { errno = EAGAIN; return -1; }
    if (e->next == e->count) {
        if (!e->more) { errno = EAGAIN; return -1; }
        for (int i = 0; i < ET_BATCH; i++) {
            struct msghdr *h = &b->msgs[i].msg_hdr;
            b->iov[i].iov_base = b->data[i];
            b->iov[i].iov_len = UDP_MAX_SIZE;
            h->msg_name = &b->names[i]; h->msg_namelen = sizeof b->names[i];
            h->msg_iov = &b->iov[i]; h->msg_iovlen = 1;
            h->msg_control = b->control[i]; h->msg_controllen = sizeof b->control[i];
            h->msg_flags = 0;
            b->msgs[i].msg_len = 0;
        }
        e->syscalls++;
        long n = syscall(SYS_recvmmsg, e->fd, b->msgs, (unsigned int)ET_BATCH, MSG_DONTWAIT, NULL);
        e->next = 0;
        if (n <= 0) { e->count = 0; e->more = 0; return -1; }
        e->count = (int)n;
        e->more = n == ET_BATCH;
        e->datagrams += (uint64_t)n;
    }
    int i = e->next++;
    struct msghdr *h = &b->msgs[i].msg_hdr;
    size_t length = b->msgs[i].msg_len;
    if (length > room) length = room;
    memcpy(msg->b_wptr, b->data[i], length);
    if (from && fromlen) {
        socklen_t n = h->msg_namelen < *fromlen ? h->msg_namelen : *fromlen;
        memcpy(from, h->msg_name, n);
        *fromlen = n;
    }
    et_copy_timestamp(h, msg);
    return (int)length;
}

static inline ortp_socket_t et_recv_endpoint_getsocket(RtpTransport *t) { return ((et_recv_endpoint *)t->data)->fd; }
static inline int et_recv_endpoint_sendto(RtpTransport *t, mblk_t *msg, int flags, const struct sockaddr *to,
                                          socklen_t tolen) {
    (void)t; (void)msg; (void)flags; (void)to; (void)tolen;
    errno = EOPNOTSUPP;  // receive-only
    return -1;
}
static inline void et_recv_endpoint_close(RtpTransport *t) { (void)t; }  // oRTP closes the socket itself
static inline void et_recv_endpoint_destroy(RtpTransport *t) {
    free(t->data);
    free(t);
}

/// Puts the batched endpoint under the session's RTP meta transport (after binding: it reads the bound
/// socket). Returns its state, owned by the transport (freed with the session), or NULL.
static inline et_recv_endpoint *et_rtp_session_install_batch_endpoint(RtpSession *s) {
    RtpTransport *meta = NULL;
    rtp_session_get_transports(s, &meta, NULL);
    if (meta == NULL || meta_rtp_transport_get_endpoint(meta) != NULL) return NULL;
    RtpTransport *t = (RtpTransport *)calloc(1, sizeof(RtpTransport));
    et_recv_endpoint *e = (et_recv_endpoint *)calloc(1, sizeof(et_recv_endpoint));
    if (t == NULL || e == NULL) { free(t); free(e); return NULL; }
    e->fd = s->rtp.gs.socket;
    t->data = e;
    t->session = s;
    t->t_getsocket = et_recv_endpoint_getsocket;
    t->t_sendto = et_recv_endpoint_sendto;
    t->t_recvfrom = et_recv_endpoint_recvfrom;
    t->t_close = et_recv_endpoint_close;
    t->t_destroy = et_recv_endpoint_destroy;
    meta_rtp_transport_set_endpoint(meta, t);
    return e;
}

/// A drain begins: reads go through `batch` until et_recv_endpoint_end.
static inline void et_recv_endpoint_begin(et_recv_endpoint *e, et_recv_batch *b) {
    e->batch = b; e->next = 0; e->count = 0; e->more = 1;
}
/// The next read goes to the socket again (the last short batch said it was empty then; more may have come).
static inline void et_recv_endpoint_rearm(et_recv_endpoint *e) { if (e->next == e->count) e->more = 1; }
/// Datagrams read from the socket but not yet handed to oRTP (a read oRTP cut short holds some).
static inline int et_recv_endpoint_pending(const et_recv_endpoint *e) { return e->count - e->next; }
/// Whether oRTP's last read stopped before the socket was known empty: datagrams wait in the batch, or it
/// stopped right after a full batch (a read that ends normally ends on EAGAIN, which clears `more`).
static inline int et_recv_endpoint_cut_short(const et_recv_endpoint *e) { return e->count > e->next || e->more; }
static inline void et_recv_endpoint_end(et_recv_endpoint *e) { e->batch = NULL; e->next = 0; e->count = 0; }
#endif
