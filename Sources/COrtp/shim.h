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
#endif
