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
    case notFound(String)  // 404

    public var description: String {
        switch self {
        case .invalid(let why): return why
        case .portUnavailable(let p): return "port \(p) is in use"
        case .noFreePort(let why):
            return "no free RTP port in the configured range" + (why.map { " (last: \($0))" } ?? "")
        case .legLimit(let n): return "leg limit reached (\(n) legs)"
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
        let box = WeakBox()
        for i in 0..<config.workerCount {
            ws.append(
                RTPWorker(index: i, legTimeoutSeconds: config.legTimeoutSeconds, logger: logger) { leg in
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
        guard LegRequest.validIdentifier(callID) else {
            throw .invalid("call_id must be 1-128 characters of letters, digits and ._:@+-")
        }
        guard LegRequest.validIdentifier(role) else {
            throw .invalid("role must be 1-128 characters of letters, digits and ._:@+-")
        }
        if let port, !config.rtpPorts.contains(port) {
            throw .invalid(
                "port \(port) is outside the RTP range \(config.rtpPorts.lowerBound)-\(config.rtpPorts.upperBound)")
        }
        let legID = "leg-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        if let agentID, !LegRequest.validIdentifier(agentID) {
            throw .invalid("agent_id must be 1-128 characters of letters, digits and ._:@+-")
        }
        let identity = LegIdentity(
            callID: callID, legID: String(legID), role: role, recording: recording, agentID: agentID, tags: tags)
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
                identity: identity, session: session, payloadTypes: payloadTypes, model: model, policy: config.policy,
                sourcePolicy: SourcePolicy(allowed: config.rtpAllow, lockToFirstSource: config.lockSource),
                publisher: publisher)
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

    /// The even ports of `range`, as first...last (empty ranges are refused by the config).
    static func evenPorts(in range: ClosedRange<Int>) -> ClosedRange<Int> {
        let first = range.lowerBound + range.lowerBound % 2
        let last = range.upperBound - range.upperBound % 2
        return first...max(first, last)
    }

    /// Reserves the requested port, or up to 8 free ones from the range (the first that binds is kept).
    private func reservePorts(_ port: Int?) throws(LegRequestError) -> [Int] {
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
            portsInUse.remove(leg.session.port)
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
