import COrtp
import EmotionMedia
import EmotionSRTP
import Foundation

public struct RTPSessionError: Error, CustomStringConvertible {
    public let description: String
}

/// A receive-only oRTP session bound to one local port: one leg.
///
/// Set up as c-libraries.md advises: jitter buffer and adaptive compensation off (we do our own
/// playout and concealment, and need timestamps as sent), RTCP off (oRTP 5.1 crashes sending its
/// first report from a receive-only session), non-blocking. A session has no lock: use it from one thread.
public final class RTPReceiveSession {
    public let host: String
    public let port: Int
    private let session: UnsafeMutablePointer<RtpSession>
    private var userTimestamp: UInt32 = 0
    /// The batched reader under oRTP's transport (see the shim), owned by the session.
    private let endpoint: UnsafeMutablePointer<et_recv_endpoint>
    /// Reads of the socket so far (one recvmmsg takes up to 16 datagrams).
    public var socketReads: UInt64 { endpoint.pointee.syscalls }
    /// Datagrams taken from the socket so far, whether or not they came out as packets.
    public var datagramsRead: UInt64 { endpoint.pointee.datagrams }
    /// oRTP's RTCP transport, parked while RTCP is off (see the shim).
    private let rtcpTransport: UnsafeMutablePointer<RtpTransport>?

    /// Playout delay in ms (0: packets go to the leg as soon as they are read, sorted per read).
    public let jitterBufferMilliseconds: Int
    /// The user clock oRTP's jitter buffer runs on, in the stream's timestamp units (the payload
    /// type's clock, from `payloadTypes`), counted from `clockStart`.
    private var clockRate: Double
    private let clockStart: Double
    private var payloadTypes: PayloadTypes

    /// `jitterBufferMilliseconds` > 0 holds each packet that long after it arrives (oRTP's jitter buffer,
    /// fixed delay), so packets overtaken by up to that much are put back in order instead of being late.
    /// The leg's declared codec (in `payloadTypes`) sets the clock from the start; else it is learned
    /// from the first packets.
    public init(
        host: String, port: Int, jitterBufferMilliseconds: Int = 0,
        payloadTypes: PayloadTypes = PayloadTypes(), srtp: SDESCrypto? = nil
    ) throws(RTPSessionError) {
        ORTPLibrary.initialize()
        let srtpSession: SRTPSession?
        do {
            srtpSession = try srtp.map { c throws(SRTPSession.SetupError) in try SRTPSession(c, direction: .inbound) }
        } catch {
            throw RTPSessionError(description: "SRTP: \(error)")
        }
        guard let s = rtp_session_new(Int32(RTP_SESSION_RECVONLY.rawValue)) else {
            throw RTPSessionError(description: "oRTP could not create a session")
        }
        rtp_session_enable_rtcp(s, 0)
        rtp_session_set_scheduling_mode(s, 0)
        rtp_session_set_blocking_mode(s, 0)
        // oRTP moves everything on the socket into its queue and drops the oldest past max_packets
        // (200 by default, counted as `discarded`): room for a sender that sends a file at full speed.
        // Behind a paced sender the queue is bounded by the socket's buffer, and audio that waited too
        // long is shed by the leg (`rtp.max_delay_ms`); the buffers a burst took are trimmed after it.
        var jitter = JBParameters()
        rtp_session_get_jitter_buffer_params(s, &jitter)
        jitter.max_packets = 2000
        jitter.enabled = jitterBufferMilliseconds > 0 ? 1 : 0
        jitter.adaptive = 0
        jitter.min_size = Int32(jitterBufferMilliseconds)
        jitter.nom_size = Int32(jitterBufferMilliseconds)
        jitter.max_size = Int32(jitterBufferMilliseconds)
        rtp_session_set_jitter_buffer_params(s, &jitter)
        rtp_session_enable_jitter_buffer(s, jitterBufferMilliseconds > 0 ? 1 : 0)
        rtp_session_enable_adaptive_jitter_compensation(s, 0)
        if jitterBufferMilliseconds > 0 {
            // The buffer's delay is counted in the payload's clock: oRTP must know Opus runs at 48 kHz.
            rtp_session_set_profile(s, Self.profile(telephoneEventPayloadType: payloadTypes.telephoneEventPayloadType))
            et_rtp_session_set_permissive(s, 1)
            et_rtp_session_resync_on_jumps(s)
        } else {
            rtp_session_set_profile(s, et_av_profile())
        }
        // A re-INVITE may switch SSRC: follow a new source after a few packets rather than 50, and restart
        // the sequence state when it does.
        rtp_session_set_ssrc_changed_threshold(s, 3)
        et_rtp_session_resync_on_ssrc_change(s)
        rtp_session_set_rtp_socket_recv_buffer_size(s, 256 * 1024)
        // oRTP binds with SO_REUSEADDR and SO_REUSEPORT by default: a second process could then bind the
        // same port and take a share of the leg's packets. A leg's port is its own.
        rtp_session_set_reuseaddr(s, 0)
        if rtp_session_set_local_addr(s, host, Int32(port), -1) != 0 {
            rtp_session_destroy(s)
            throw RTPSessionError(description: "cannot bind RTP to \(host):\(port) (in use or not a local address)")
        }
        let counter = SRTPReceiveModifier.Counter()
        if let srtpSession {
            guard SRTPReceiveModifier.install(srtpSession, on: s, counter: counter) else {
                rtp_session_destroy(s)
                throw RTPSessionError(description: "SRTP: oRTP has no RTP transport to decrypt on")
            }
        }
        guard let endpoint = et_rtp_session_install_batch_endpoint(s) else {
            rtp_session_destroy(s)
            throw RTPSessionError(description: "oRTP has no RTP transport to read through")
        }
        self.endpoint = endpoint
        rtcpTransport = et_rtp_session_detach_rtcp(s)
        self.srtp = srtpSession
        srtpCounter = counter
        self.jitterBufferMilliseconds = jitterBufferMilliseconds
        self.payloadTypes = payloadTypes
        clockRate = Double(payloadTypes.initialClockRate)
        clockStart = Self.wallClock()
        session = s
        self.host = host
        self.port = Int(rtp_session_get_local_port(s))
    }

    /// New payload types for the clock the jitter buffer follows (a re-INVITE moved them).
    public func update(payloadTypes: PayloadTypes) { self.payloadTypes = payloadTypes }

    deinit {
        et_rtp_session_reattach_rtcp(session, rtcpTransport)
        rtp_session_destroy(session)
    }

    /// The socket, for epoll.
    public var fileDescriptor: Int32 { Int32(rtp_session_get_rtp_socket(session)) }

    /// Datagrams oRTP passed on but `payload(of:)` rejected (extension or padding overrun, cut short).
    public private(set) var malformed: UInt64 = 0

    /// The leg's SRTP (SDES key), when its media is encrypted: each datagram is authenticated and
    /// decrypted by a transport modifier before oRTP parses it (see `SRTPReceiveModifier`), so a
    /// forged packet never reaches oRTP's sequence or SSRC state; one that fails is counted and dropped.
    private let srtp: SRTPSession?
    private let srtpCounter: SRTPReceiveModifier.Counter
    public var srtpAuthFailed: UInt64 { srtpCounter.failed }

    /// oRTP's own counters.
    public var libraryStatistics: rtp_stats_t { rtp_session_get_stats(session).pointee }

    /// Hands every packet queued on the socket to `handler`, in sequence order; returns how many.
    /// oRTP reads the socket (through the batched endpoint: up to 16 datagrams per recvmmsg) only when the
    /// user timestamp moves forward, and then until a read would block: so the timestamp moves once per
    /// drain, and again only when a read was cut short. Asking per packet with a new timestamp cost one
    /// recvmsg (EAGAIN) per packet after the first. A drain working through a backlog reads again after
    /// every 16 packets, as the handler's work lets more pile up: a sender at full speed must not overflow
    /// the socket (about 230 wideband packets) while the leg analyses what came before.
    @discardableResult
    public func drain(_ handler: (RTPPacket) -> Void) -> Int {
        var count = 0, retries = 0, sinceRead = 0, rereads = 0
        /// Moves oRTP's clock on, so that its next ask reads the socket (a sample with the jitter buffer,
        /// which releases packets by this clock; a packet's worth without).
        func moveClock() { userTimestamp &+= jitterBufferMilliseconds > 0 ? 1 : 160 }
        /// Whether the drain goes on: oRTP holds more, or a backlog is due another read of the socket.
        func goesOn() -> Bool {
            sinceRead += 1
            if sinceRead >= ET_BATCH, rereads < Self.maxRereads {
                rereads += 1
                sinceRead = 0
                et_recv_endpoint_rearm(endpoint)
                moveClock()
                return true
            }
            return et_rtp_session_queued(session) > 0 || et_recv_endpoint_cut_short(endpoint) != 0
        }
        if jitterBufferMilliseconds > 0 {
            // The jitter buffer releases a packet once this clock has moved its delay past the packet's arrival.
            userTimestamp = UInt32(truncatingIfNeeded: Int64((Self.wallClock() - clockStart) * clockRate))
        } else {
            moveClock()
        }
        et_recv_endpoint_begin(endpoint, ReceiveBatch.current)
        defer { et_recv_endpoint_end(endpoint) }
        while true {
            guard let message = rtp_session_recvm_with_ts(session, userTimestamp) else {
                // oRTP ends its read at a datagram it does not take (one that fails SRTP, an empty one):
                // ask again (bounded, with the clock moved on so that oRTP reads) so the datagrams behind
                // it, already in the batch or still on the socket, are not left waiting for the next wake.
                guard et_recv_endpoint_cut_short(endpoint) != 0 else { break }
                guard retries < Self.maxRetries else {
                    // A flood of bad datagrams: the ones read with it are dropped with it.
                    malformed &+= UInt64(et_recv_endpoint_pending(endpoint))
                    break
                }
                retries += 1
                moveClock()
                continue
            }
            defer { freemsg(message) }
            guard let payload = Self.payload(of: message, receiveBufferSize: Self.receiveBufferSize) else {
                malformed &+= 1
                if goesOn() { continue }
                break
            }
            // Read the fields in place: copying the whole mblk_t (with its sockaddr_storage) per packet is waste.
            var ip: UInt32 = 0, port: UInt16 = 0
            if message.pointee.net_addrlen >= socklen_t(MemoryLayout<sockaddr_in>.size),
                message.pointee.net_addr.ss_family == sa_family_t(AF_INET)
            {
                let sin = UnsafeRawPointer(message).load(fromByteOffset: Self.netAddressOffset, as: sockaddr_in.self)
                ip = UInt32(bigEndian: sin.sin_addr.s_addr)
                port = UInt16(bigEndian: sin.sin_port)
            }
            let arrival = message.pointee.timestamp
            let packet = RTPPacket(
                sequenceNumber: et_rtp_get_seqnumber(message), timestamp: et_rtp_get_timestamp(message),
                ssrc: et_rtp_get_ssrc(message),
                payloadType: UInt8(truncatingIfNeeded: et_rtp_get_payload_type(message)),
                marker: et_rtp_get_markbit(message) != 0,
                payload: payload,
                arrival: Double(arrival.tv_sec) + Double(arrival.tv_usec) / 1e6,
                source: SourceAddress(
                    ipv4: ip, port: port, socketAddress: UnsafeRawPointer(message) + Self.netAddressOffset,
                    socketAddressLength: Int(message.pointee.net_addrlen)))
            followClock(of: packet.payloadType)
            handler(packet)
            count += 1
            if !goesOn() { break }
        }
        // After a backlog, give back the buffers it took (at steady pace a leg uses two or three).
        if count > Self.keptBuffers { et_rtp_session_trim_buffers(session, Int32(Self.keptBuffers)) }
        return count
    }

    /// oRTP buffers a leg keeps between reads; more, and the read that needed them frees them.
    static let keptBuffers = 16

    /// Hands every packet still held to `handler` whatever its time (a leg's last drain).
    @discardableResult
    public func drainAll(_ handler: (RTPPacket) -> Void) -> Int {
        // Without the jitter buffer every queued packet is due at once.
        if jitterBufferMilliseconds > 0 { rtp_session_enable_jitter_buffer(session, 0) }
        return drain(handler)
    }

    static func wallClock() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// The jitter buffer's clock follows the codec the packets carry (Opus 48 kHz, G.711 8 kHz); on a
    /// change, oRTP restarts its timing (dropping what it held: once, at the start of an Opus leg
    /// whose codec was not declared).
    private func followClock(of payloadType: UInt8) {
        guard jitterBufferMilliseconds > 0, let rate = payloadTypes.clockRate(of: payloadType).map(Double.init) else {
            return
        }
        if rate != clockRate {
            clockRate = rate
            rtp_session_resync(session)
        }
    }

    /// av_profile with the dynamic payload types (but the DTMF one) as Opus, so that oRTP's jitter
    /// buffer counts its delay in the right clock. One per DTMF payload type, kept for the process.
    private static func profile(telephoneEventPayloadType: UInt8) -> UnsafeMutablePointer<RtpProfile> {
        profileLock.withLock {
            if let p = profiles[telephoneEventPayloadType] { return p }
            let p = rtp_profile_clone(et_av_profile())!
            for pt in 96...127 where pt != Int(telephoneEventPayloadType) {
                rtp_profile_set_payload(p, Int32(pt), et_payload_type_opus())
            }
            profiles[telephoneEventPayloadType] = p
            return p
        }
    }
    nonisolated(unsafe) private static var profiles: [UInt8: UnsafeMutablePointer<RtpProfile>] = [:]
    private static let profileLock = NSLock()

    /// Asks after a read cut short per drain: a flood of bad datagrams costs this many asks per wake at
    /// most (epoll wakes again while the socket holds more).
    static let maxRetries = 64
    /// Reads of the socket per drain after the first while a backlog lasts (16 packets each): about 20 s of
    /// G.711, after which the leg waits for its next turn like the others.
    static let maxRereads = 64

    /// oRTP reads each datagram into a buffer of this many bytes; a longer one arrives cut short.
    public static let receiveBufferSize = Int(UDP_MAX_SIZE)

    /// Where the sender's address sits in an mblk_t, worked out once rather than per packet.
    static let netAddressOffset = MemoryLayout<mblk_t>.offset(of: \.net_addr)!

    /// The payload after the CSRC list and header extension and before any padding; nil when one of
    /// them overruns the datagram, or when the datagram filled oRTP's whole buffer (it was longer:
    /// the read cut it, and no RTP audio packet is that long). oRTP checks the version, the fixed
    /// header and the CSRC list, but not the extension or the padding.
    static func payload(of message: UnsafeMutablePointer<mblk_t>, receiveBufferSize: Int) -> UnsafeRawBufferPointer? {
        guard message.pointee.b_cont == nil, let base = message.pointee.b_rptr, let end = message.pointee.b_wptr else {
            var start: UnsafeMutablePointer<UInt8>?
            let length = Int(rtp_get_payload(message, &start))
            return start == nil || length < 0 ? nil : UnsafeRawBufferPointer(start: start, count: length)
        }
        return RTPHeader.payload(
            of: UnsafeRawBufferPointer(start: base, count: max(0, end - base)), receiveBufferSize: receiveBufferSize)
    }
}

/// The draining thread's batch of datagrams (about 26 kB, one per thread, kept until the thread exits): a
/// leg's socket is read into it and oRTP takes each datagram from it, so no leg holds one.
enum ReceiveBatch {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { raw in
            et_recv_batch_free(raw?.assumingMemoryBound(to: et_recv_batch.self))
        }
        return key
    }()

    static var current: UnsafeMutablePointer<et_recv_batch> {
        if let raw = pthread_getspecific(key) { return raw.assumingMemoryBound(to: et_recv_batch.self) }
        guard let batch = et_recv_batch_new() else { fatalError("out of memory for a receive batch") }
        pthread_setspecific(key, batch)
        return batch
    }
}
