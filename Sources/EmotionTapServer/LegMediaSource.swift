import EmotionMedia
import EmotionORTP

/// Where a leg's packets come from: an oRTP session on a UDP port, or a stream connection (AudioSocket,
/// WebSocket) that pushes audio into a `StreamInbox`. The worker drains both the same way, so every
/// source feeds the same `LegPipeline`.
protocol LegMediaSource: AnyObject {
    /// The RTP socket, or the inbox's eventfd (which the worker's epoll waits on).
    var fileDescriptor: Int32 { get }
    /// Read on every pass of the worker without asking epoll first (RTP sockets: see `RTPWorker`), rather
    /// than when its descriptor is ready (stream inboxes, which hold audio only while a connection is up).
    var readOnEveryPass: Bool { get }
    /// The leg's RTP port; 0 for a stream leg.
    var port: Int { get }
    /// Hands what is due to `handler`; returns how many packets it handed.
    func drain(_ handler: (RTPPacket) -> Void) -> Int
    /// Datagrams taken from the socket so far, refused ones too (failed SRTP, malformed), or the frames a
    /// stream inbox handed on (its connection refuses bad ones before they are queued): what the worker's
    /// burst rule counts, since a flood of bad datagrams fills a socket as fast as good ones.
    var datagramsRead: UInt64 { get }
    /// The last read before the leg ends: everything still held.
    func drainAll(_ handler: (RTPPacket) -> Void) -> Int
    func update(payloadTypes: PayloadTypes)
    /// Adds what the source dropped or refused before the pipeline saw it to the pipeline's figures.
    func addDrops(to counters: inout LegCounters, _ statistics: inout ReceptionStatistics)
}

extension RTPReceiveSession: LegMediaSource {
    var readOnEveryPass: Bool { true }

    func addDrops(to c: inout LegCounters, _ s: inout ReceptionStatistics) {
        // One read of oRTP's counters for all of them.
        let library = libraryStatistics
        c.malformed = library.bad &+ malformed
        c.queueOverflow &+= library.discarded  // beside what the worker shed as too late
        c.srtpAuthFailed = srtpAuthFailed
        // Packets older than what the leg already played: oRTP drops them before the pipeline sees them.
        c.late &+= library.outoftime
        s.lateBeforeDelivery = library.outoftime
        s.duplicatesBeforeDelivery = library.packet_dup_recv
    }
}
