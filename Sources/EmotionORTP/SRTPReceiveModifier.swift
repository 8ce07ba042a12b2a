import COrtp
import EmotionSRTP
import Foundation

/// SRTP on the oRTP session itself: a transport modifier on the session's RTP transport, which oRTP
/// runs on each datagram as read, before it parses the header. So a packet that fails authentication
/// (a forged or replayed one, or a wrong key) is dropped before it can move oRTP's sequence, SSRC or
/// jitter state, and oRTP only ever sees plain RTP.
///
/// The modifier is owned by the transport: oRTP calls `t_destroy` when the session goes, which
/// releases the context below. Everything runs on the leg's thread (oRTP calls it from recvm).
enum SRTPReceiveModifier {
    /// Failures for the leg to report (`srtp_auth_failed`); read and written on the leg's thread only.
    final class Counter: @unchecked Sendable {
        var failed: UInt64 = 0
    }

    private final class Context {
        let srtp: SRTPSession
        let counter: Counter
        init(srtp: SRTPSession, counter: Counter) {
            self.srtp = srtp
            self.counter = counter
        }
    }

    /// Appends the modifier to `session`'s RTP transport; false when oRTP has none (not a 5.x meta
    /// transport), so the caller can refuse the leg rather than pass ciphertext on.
    static func install(_ srtp: SRTPSession, on session: UnsafeMutablePointer<RtpSession>, counter: Counter) -> Bool {
        var rtpTransport: UnsafeMutablePointer<RtpTransport>?
        rtp_session_get_transports(session, &rtpTransport, nil)
        guard let rtpTransport else { return false }
        guard
            let modifier = calloc(1, MemoryLayout<RtpTransportModifier>.size)?
                .assumingMemoryBound(to: RtpTransportModifier.self)
        else { return false }
        modifier.pointee.data = Unmanaged.passRetained(Context(srtp: srtp, counter: counter)).toOpaque()
        modifier.pointee.t_process_on_send = { _, message in
            // Receive-only sessions send nothing; pass anything through unchanged.
            Int32(truncatingIfNeeded: msgdsize(message))
        }
        modifier.pointee.t_process_on_receive = { modifier, message in
            guard let modifier, let message, let data = modifier.pointee.data else { return 0 }
            let context = Unmanaged<Context>.fromOpaque(data).takeUnretainedValue()
            guard message.pointee.b_cont == nil, let base = message.pointee.b_rptr,
                let end = message.pointee.b_wptr, end > base
            else {
                context.counter.failed &+= 1
                return 0
            }
            switch context.srtp.unprotect(base, length: end - base) {
            case .success(let length):
                return Int32(length)
            case .failure:
                // 0, not -1: oRTP then leaves its buffer clean (write pointer back at the start) and
                // treats the read as empty; the datagram is gone.
                context.counter.failed &+= 1
                return 0
            }
        }
        modifier.pointee.t_process_on_schedule = nil
        modifier.pointee.t_destroy = { modifier in
            guard let modifier else { return }
            if let data = modifier.pointee.data { Unmanaged<Context>.fromOpaque(data).release() }
            free(modifier)
        }
        meta_rtp_transport_append_modifier(rtpTransport, modifier)
        return true
    }
}
