import EmotionCore
import EmotionMedia
import EmotionORTP
import EmotionProtocol
import Foundation
import Logging
import Metrics

/// Why a leg could not be created: each maps to an HTTP status.
public enum LegRequestError: Error, Equatable, CustomStringConvertible {
    case invalid(String)  // 400
    case portUnavailable(Int)  // 409
    /// Every port tried failed to bind; the last reason.
    case noFreePort(String?)  // 503
    case legLimit(Int)  // 503
    /// The busiest worker spent this share of the last second working, over `rtp.max_worker_busy`.
    case overloaded(Double)  // 503
    /// A worker read its oldest packet this many ms after it arrived, over `rtp.max_backlog_ms`.
    case backlogged(Int)  // 503
    case notFound(String)  // 404

    public var description: String {
        switch self {
        case .invalid(let why): return why
        case .portUnavailable(let p): return "port \(p) is in use"
        case .noFreePort(let why):
            return "no free RTP port in the configured range" + (why.map { " (last: \($0))" } ?? "")
        case .legLimit(let n): return "leg limit reached (\(n) legs)"
        case .overloaded(let busy):
            return String(
                format: "overloaded: the busiest RTP worker is %.0f %% busy; try another instance", busy * 100)
        case .backlogged(let ms):
            return "overloaded: an RTP worker is reading audio \(ms) ms late; try another instance"
        case .notFound(let id): return "no leg '\(id)'"
        }
    }
}

/// Creates, finds and ends legs; spreads them over the RTP workers. Thread-safe.
public final class LegManager: @unchecked Sendable {
    // `legs`, `portsInUse` and `cursor` are guarded by `lock`.
    private let lock = NSLock()
    private var legs: [String: LiveLeg] = [:]
    private var portsInUse = Set<Int>()
    private var cursor: Int
    private let workers: [RTPWorker]
    public let config: ServerConfig
    public let model: EmotionModel
    public let publisher: EventPublisher
    private let logger: Logger
    private let created: Counter
    private let endedCounter: Counter
    private let activeGauge: Gauge
    private let refusedOverload: Counter
    // Packet totals of ended legs, added once per leg (never per packet: no shared counter on the hot path).
    private let packetsReceived: Counter
    /// One counter per drop reason in the counter table.
    private let packetsDropped: [(WritableKeyPath<RTPTotals, UInt64>, Counter)]

    public init(
        config: ServerConfig, model: EmotionModel, publisher: EventPublisher, logger: Logger,
        metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        self.config = config
        self.model = model
        self.publisher = publisher
        self.logger = logger
        cursor = Self.evenPorts(in: config.rtpPorts).lowerBound
        created = Counter(label: "emotiontap_legs_created_total", factory: metrics)
        endedCounter = Counter(label: "emotiontap_legs_ended_total", factory: metrics)
        activeGauge = Gauge(label: "emotiontap_legs_active", factory: metrics)
        refusedOverload = Counter(
            label: "emotiontap_legs_refused_total", dimensions: [("reason", "overload")], factory: metrics)
        packetsReceived = Counter(label: "emotiontap_rtp_packets_total", factory: metrics)
        packetsDropped = RTPTotals.fields.compactMap { field in
            guard let reason = field.dropReason, case .count(let path) = field.value else { return nil }
            return (
                path,
                Counter(
                    label: "emotiontap_rtp_packets_dropped_total", dimensions: [("reason", reason)], factory: metrics)
            )
        }
        var ws: [RTPWorker] = []
        let windowsSkipped = Counter(label: "emotiontap_windows_skipped_total", factory: metrics)
        let box = WeakBox()
        for i in 0..<config.workerCount {
            ws.append(
                RTPWorker(
                    index: i, legTimeoutSeconds: config.legTimeoutSeconds, logger: logger,
                    metrics: RTPWorker.LoadMetrics(
                        busy: Gauge(
                            label: "emotiontap_worker_busy_ratio", dimensions: [("worker", "\(i)")], factory: metrics),
                        backlog: Gauge(
                            label: "emotiontap_worker_backlog_seconds", dimensions: [("worker", "\(i)")],
                            factory: metrics),
                        windowsSkipped: windowsSkipped),
                    windowHopSeconds: model.windows.hop,
                    readIntervalSeconds: Double(config.readIntervalMilliseconds) / 1000,
                    nice: config.workerNice
                ) { leg in
                    box.manager?.ended(leg)
                })
        }
        workers = ws
        box.manager = self
        for w in workers { w.start() }
    }

    final class WeakBox: @unchecked Sendable {
        // Set once before any worker can call back.
        weak var manager: LegManager?
    }

    public func create(
        callID: String, role: String, codec: VoiceCodec?, port: Int?, payloadType: UInt8? = nil,
        srtp: SDESCrypto? = nil, agentID: String? = nil, tags: [String: String] = [:]
    ) throws(LegRequestError) -> LegSnapshot {
        var dynamic: [UInt8: VoiceCodec] = [:]
        if let payloadType, let codec { dynamic[payloadType] = codec }
        let payloadTypes = PayloadTypes(
            requestedCodec: codec, dynamicCodecs: dynamic, telephoneEventPayloadType: config.telephoneEventPayloadType)
        return try create(
            callID: callID, role: role, payloadTypes: payloadTypes, port: port, recording: nil, srtp: srtp,
            agentID: agentID, tags: tags)
    }

    /// A leg whose payload types an SDP offer set (SIPREC), or the API's, optionally a recorded stream.
    public func create(
        callID: String, role: String, payloadTypes: PayloadTypes, port: Int?, recording: RecordedStream?,
        srtp: SDESCrypto? = nil, agentID: String? = nil, tags: [String: String] = [:]
    ) throws(LegRequestError) -> LegSnapshot {
        try Self.checkIdentity(callID: callID, role: role, agentID: agentID)
        if let port, !config.rtpPorts.contains(port) {
            throw .invalid(
                "port \(port) is outside the RTP range \(config.rtpPorts.lowerBound)-\(config.rtpPorts.upperBound)")
        }
        let identity = LegIdentity(
            callID: callID, legID: Self.newLegID(), role: role, recording: recording, agentID: agentID, tags: tags)
        // Reserve a port under the lock, bind outside it.
        let candidates = try reservePorts(port)
        var session: RTPReceiveSession?
        var bindFailure: RTPSessionError?
        for p in candidates where session == nil {
            // A port another process holds fails to bind: try the next reserved one.
            do {
                session = try RTPReceiveSession(
                    host: config.rtpHost, port: p, jitterBufferMilliseconds: config.jitterBufferMilliseconds,
                    payloadTypes: payloadTypes, srtp: srtp)
            } catch {
                bindFailure = error
                logger.debug("RTP port not usable", metadata: ["rtp.port": "\(p)", "error": "\(error)"])
            }
        }
        guard let session else {
            lock.withLock { for p in candidates { portsInUse.remove(p) } }
            if let port { throw .portUnavailable(port) }
            throw .noFreePort(bindFailure?.description)
        }
        lock.withLock { for p in candidates where p != session.port { portsInUse.remove(p) } }
        let leg: LiveLeg
        do {
            leg = try LiveLeg(
                identity: identity, media: session, payloadTypes: payloadTypes, model: model, policy: config.policy,
                sourcePolicy: SourcePolicy(allowed: config.rtpAllow, lockToFirstSource: config.lockSource),
                publisher: publisher,
                maxDelaySeconds: Double(config.maxDelayMilliseconds + config.jitterBufferMilliseconds) / 1000)
        } catch {
            lock.withLock { _ = portsInUse.remove(session.port) }
            throw .invalid("cannot set up the leg: \(error)")
        }
        let worker = workers.min { $0.legCount < $1.legCount }!
        lock.withLock {
            legs[identity.legID] = leg
            activeGauge.record(legs.count)
        }
        worker.add(leg)
        created.increment()
        logger.info(
            "leg created",
            metadata: [
                "call.id": "\(callID)", "leg.id": "\(identity.legID)", "leg.role": "\(role)",
                "rtp.port": "\(session.port)",
            ])
        return leg.snapshot
    }

    /// A leg fed by a stream connection (AudioSocket, a WebSocket protocol) instead of RTP: no port is
    /// taken; the connection pushes `codec` audio (PCMU, or L16 at 8 kHz) into the returned inbox, and
    /// the leg's worker drains it like a socket. `eventSink` gets each of the leg's events on the
    /// worker, for a protocol that sends results back on its own connection.
    func createStream(
        callID: String, role: String, codec: VoiceCodec, origin: StreamOrigin, listenerPort: Int,
        source: SourceAddress, agentID: String? = nil, tags: [String: String] = [:], awaitConnection: Bool = false,
        exclusive: Bool = false, eventSink: (@Sendable (Event.Body, String) -> Void)? = nil
    ) throws(LegRequestError) -> (LegSnapshot, StreamInbox) {
        try Self.checkIdentity(callID: callID, role: role, agentID: agentID)
        guard codec == .pcmu || codec == .l16 else { throw .invalid("a stream leg carries PCMU or L16/8000") }
        try admit()
        let identity = LegIdentity(
            callID: callID, legID: Self.newLegID(), role: role, agentID: agentID, tags: tags, stream: origin)
        let payloadType = StreamInbox.payloadType(of: codec)
        let payloadTypes = PayloadTypes(
            requestedCodec: codec, dynamicCodecs: codec == .l16 ? [payloadType: .l16] : [:],
            telephoneEventPayloadType: 101)
        let inbox: StreamInbox
        // 8 or 16 bytes a millisecond (PCMU, L16/8000).
        let maxBytes = config.streams.maxQueueMilliseconds * (codec == .pcmu ? 8 : 16)
        do { inbox = try StreamInbox(source: source, listenerPort: listenerPort, maxBytes: maxBytes) } catch {
            throw .noFreePort(error.description)
        }
        let leg: LiveLeg
        do {
            leg = try LiveLeg(
                identity: identity, media: inbox, payloadTypes: payloadTypes, model: model, policy: config.policy,
                sourcePolicy: SourcePolicy(), publisher: publisher,
                maxDelaySeconds: Double(config.maxDelayMilliseconds) / 1000, eventSink: eventSink)
            leg.exclusiveStream = awaitConnection || exclusive
        } catch {
            throw .invalid("cannot set up the leg: \(error)")
        }
        do {
            lock.lock()
            defer { lock.unlock() }
            guard legs.count < config.maxLegs else { throw LegRequestError.legLimit(config.maxLegs) }
            // AudioSocket: one leg per UUID, made by the API before the call connects or by the connection.
            if awaitConnection || exclusive {
                guard waitingStreams[origin.key] == nil, !claimedStreams.contains(origin.key) else {
                    throw LegRequestError.invalid("\(origin.kind) stream \(origin.id) already has a leg")
                }
                if awaitConnection {
                    waitingStreams[origin.key] = (identity.legID, inbox)
                } else {
                    claimedStreams.insert(origin.key)
                }
            }
            legs[identity.legID] = leg
            activeGauge.record(legs.count)
        }
        workers.min { $0.legCount < $1.legCount }!.add(leg)
        created.increment()
        logger.info(
            "stream leg created",
            metadata: [
                "call.id": "\(callID)", "leg.id": "\(identity.legID)", "leg.role": "\(role)",
                "stream": "\(origin.kind)", "stream.id": "\(origin.id)",
            ])
        return (leg.snapshot, inbox)
    }

    /// The leg the API made for a stream that has not connected yet (`POST /v1/legs` with
    /// `audiosocket_uuid`), handed to the connection that brings it; nil when there is none (or it
    /// was claimed already, or has timed out).
    func claimStream(_ origin: StreamOrigin) -> (legID: String, inbox: StreamInbox)? {
        lock.withLock {
            guard let waiting = waitingStreams.removeValue(forKey: origin.key) else { return nil }
            claimedStreams.insert(origin.key)
            return waiting
        }
    }

    /// Whether a stream with this id has a leg (waiting or connected): a second connection is refused.
    func hasStream(_ origin: StreamOrigin) -> Bool {
        lock.withLock { waitingStreams[origin.key] != nil || claimedStreams.contains(origin.key) }
    }

    private var waitingStreams: [String: (legID: String, inbox: StreamInbox)] = [:]
    private var claimedStreams = Set<String>()

    /// The identifiers a leg is known by, checked as the API's body is (`LegRequest.validIdentifier`).
    private static func checkIdentity(callID: String, role: String, agentID: String?) throws(LegRequestError) {
        let rule = "must be 1-128 characters of letters, digits and ._:@+-"
        guard LegRequest.validIdentifier(callID) else { throw .invalid("call_id \(rule)") }
        guard LegRequest.validIdentifier(role) else { throw .invalid("role \(rule)") }
        if let agentID, !LegRequest.validIdentifier(agentID) { throw .invalid("agent_id \(rule)") }
    }

    private static func newLegID() -> String {
        "leg-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
    }

    /// The even ports of `range`, as first...last (empty ranges are refused by the config).
    static func evenPorts(in range: ClosedRange<Int>) -> ClosedRange<Int> {
        let first = range.lowerBound + range.lowerBound % 2
        let last = range.upperBound - range.upperBound % 2
        return first...max(first, last)
    }

    /// Reserves the requested port, or up to 8 free ones from the range (the first that binds is kept).
    private func reservePorts(_ port: Int?) throws(LegRequestError) -> [Int] {
        try admit()
        lock.lock()
        defer { lock.unlock() }
        guard legs.count < config.maxLegs else { throw .legLimit(config.maxLegs) }
        if let port {
            guard !portsInUse.contains(port) else { throw .portUnavailable(port) }
            portsInUse.insert(port)
            return [port]
        }
        // Even ports only (RFC 3550 11): a sender that was told nothing else sends RTCP to port + 1, and
        // on consecutive ports that would be the next leg's RTP port.
        let evens = Self.evenPorts(in: config.rtpPorts)
        var candidates: [Int] = []
        var p = cursor
        for _ in 0..<evens.count where candidates.count < 8 {
            if !portsInUse.contains(p) { candidates.append(p); portsInUse.insert(p) }
            p = p + 2 > evens.upperBound ? evens.lowerBound : p + 2
        }
        cursor = p
        guard !candidates.isEmpty else { throw .noFreePort(nil) }
        return candidates
    }

    /// The busiest worker's share of the last second spent working (0-1): near 1, legs are about to fall
    /// behind (events late, oRTP's queues growing).
    public var workerBusy: Double { Double(workers.map { $0.busyPermille.load(ordering: .relaxed) }.max() ?? 0) / 1000 }

    /// The largest backlog of any worker: how late (ms) it read its oldest packet in the last second.
    public var workerBacklogMilliseconds: Int {
        workers.map { $0.backlogMilliseconds.load(ordering: .relaxed) }.max() ?? 0
    }

    /// Why new legs are refused (and `/healthz` says degraded), or nil: a worker over
    /// `rtp.max_worker_busy`, or reading audio later than `rtp.max_backlog_ms`.
    public var overload: LegRequestError? {
        if let mark = config.maxWorkerBusy {
            let busy = workerBusy
            if busy >= mark { return .overloaded(busy) }
        }
        if let mark = config.maxBacklogMilliseconds {
            let backlog = workerBacklogMilliseconds
            if backlog >= mark { return .backlogged(backlog) }
        }
        return nil
    }

    public var isOverloaded: Bool { overload != nil }

    /// Admission control: no new leg while the workers are at their mark (counted by reason).
    private func admit() throws(LegRequestError) {
        guard let refusal = overload else { return }
        refusedOverload.increment()
        throw refusal
    }

    public func end(legID: String, reason: String = "api") throws(LegRequestError) -> LegSnapshot {
        let leg = lock.withLock { legs[legID] }
        guard let leg else { throw .notFound(legID) }
        for w in workers { w.end(legID: legID, reason: reason) }
        return leg.snapshot
    }

    /// New payload types for a live leg (a re-INVITE moved them); its state goes on.
    public func update(legID: String, payloadTypes: PayloadTypes) {
        lock.withLock { legs[legID] }?.update(payloadTypes: payloadTypes)
    }

    /// Holds off (or restores) a leg's media timeout while its stream is on hold.
    public func setMediaPaused(legID: String, _ paused: Bool) {
        lock.withLock { legs[legID] }?.mediaPaused.store(paused, ordering: .relaxed)
    }

    public func snapshot(legID: String) -> LegSnapshot? { lock.withLock { legs[legID] }?.snapshot }

    public func snapshots() -> [LegSnapshot] {
        lock.withLock { Array(legs.values) }.map(\.snapshot).sorted { $0.created < $1.created }
    }

    public func snapshots(callID: String) -> [LegSnapshot] { snapshots().filter { $0.identity.callID == callID } }

    public var activeCount: Int { lock.withLock { legs.count } }

    /// Ends every leg with `leg.end` (reason `shutdown`) and stops the workers.
    public func shutdown() {
        for w in workers { w.stop(reason: "shutdown") }
        publisher.flush()
    }

    /// Called (on a worker thread) with every leg that has ended, for whatever reason: how the SIPREC
    /// sessions learn that a stream's RTP stopped. Register before legs are created.
    public func onLegEnded(_ observer: @escaping @Sendable (LegIdentity) -> Void) {
        lock.withLock { endObservers.append(observer) }
    }

    private var endObservers: [@Sendable (LegIdentity) -> Void] = []

    private func ended(_ leg: LiveLeg) {
        let observers = lock.withLock {
            legs[leg.identity.legID] = nil
            if let origin = leg.identity.stream {
                if waitingStreams[origin.key]?.legID == leg.identity.legID { waitingStreams[origin.key] = nil }
                if leg.exclusiveStream { claimedStreams.remove(origin.key) }
            } else {
                portsInUse.remove(leg.media.port)
            }
            activeGauge.record(legs.count)
            return endObservers
        }
        for observe in observers { observe(leg.identity) }
        endedCounter.increment()
        let rtp = leg.snapshot.rtp
        packetsReceived.increment(by: Int64(rtp.packets))
        for (field, counter) in packetsDropped where rtp[keyPath: field] > 0 {
            counter.increment(by: Int64(rtp[keyPath: field]))
        }
        logger.info("leg ended", metadata: ["leg.id": "\(leg.identity.legID)"])
    }
}
