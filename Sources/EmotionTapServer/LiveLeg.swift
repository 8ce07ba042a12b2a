import Synchronization
import EmotionCore
import EmotionMedia
import EmotionORTP
import EmotionProtocol
import Foundation

/// What the API shows of a leg; refreshed by its worker about once a second and on every change.
public struct LegSnapshot: Sendable {
    public var identity: LegIdentity
    public var port: Int
    public var requestedCodec: VoiceCodec?
    public var codec: VoiceCodec?
    public var payloadType: UInt8?
    public var state: String = "waiting"  // waiting (no RTP yet), active, ended
    public var mood: LegMood = .calm
    public var upset: Double?  // smoothed upset level
    public var label: Emotion?
    public var escalated = false
    public var mediaSeconds = 0.0
    public var created: Date
    public var rtp = RTPTotals()
}

/// One leg in the service: its media source (an oRTP session, or a stream connection's inbox), its
/// media pipeline, and the events it publishes. Owned by one worker thread; only `snapshot` is read
/// from elsewhere, under its lock.
final class LiveLeg: @unchecked Sendable {
    // `pipeline` and `media` are touched by the owning worker only; `snapshotStorage` under `lock`.
    let identity: LegIdentity
    let media: any LegMediaSource
    /// Called on the worker with each event's datagram after it is published (a stream protocol that
    /// sends results back on its own connection); `leg.end` is the last.
    let eventSink: (@Sendable (Event.Body, String) -> Void)?
    private(set) var pipeline: LegPipeline!
    private let publisher: EventPublisher
    private let lock = NSLock()
    private var snapshotStorage: LegSnapshot
    var lastPacketAt: Double
    /// On hold or a paused recording (SIPREC `a=inactive`): no RTP is expected, so no media timeout.
    let mediaPaused = Atomic<Bool>(false)
    let createdAt: Double
    private(set) var ended = false
    /// A stream leg that holds its stream id alone (AudioSocket's UUID), freed when it ends.
    var exclusiveStream = false

    init(
        identity: LegIdentity, media: any LegMediaSource, payloadTypes: PayloadTypes, model: EmotionModel,
        policy: LegPolicy, sourcePolicy: SourcePolicy, publisher: EventPublisher, maxDelaySeconds: Double,
        eventSink: (@Sendable (Event.Body, String) -> Void)? = nil
    ) throws {
        self.identity = identity
        self.maxDelaySeconds = maxDelaySeconds
        self.media = media
        self.eventSink = eventSink
        self.publisher = publisher
        let now = Date()
        createdAt = now.timeIntervalSince1970
        lastPacketAt = createdAt
        snapshotStorage = LegSnapshot(
            identity: identity, port: media.port, requestedCodec: payloadTypes.requestedCodec, created: now)
        pipeline = try LegPipeline(
            identity: identity, payloadTypes: payloadTypes, sourcePolicy: sourcePolicy, model: model,
            policy: policy
        ) { [unowned self] output in self.publish(output) }
    }

    var snapshot: LegSnapshot { lock.withLock { snapshotStorage } }

    /// Reads what is queued on the socket (and due, with a jitter buffer).
    /// Payload types a re-INVITE set, handed to the owning worker (checked once per drain, not per packet).
    private let pendingPayloadTypes = Mutex<PayloadTypes?>(nil)
    private let hasPendingPayloadTypes = Atomic<Bool>(false)

    /// Thread-safe: the worker applies them before its next read.
    func update(payloadTypes: PayloadTypes) {
        pendingPayloadTypes.withLock { $0 = payloadTypes }
        hasPendingPayloadTypes.store(true, ordering: .releasing)
    }

    private func applyPendingPayloadTypes() {
        guard hasPendingPayloadTypes.exchange(false, ordering: .acquiringAndReleasing),
            let types = pendingPayloadTypes.withLock({ p -> PayloadTypes? in
                defer { p = nil }; return p
            })
        else { return }
        media.update(payloadTypes: types)
        pipeline.update(payloadTypes: types)
    }

    /// Audio read later than this after it arrived is skipped unanalysed (`rtp.max_delay_ms`): a worker
    /// that fell behind drops the oldest audio and catches up, instead of falling further behind.
    let maxDelaySeconds: Double

    /// What one read found: how late its oldest packet was read, and the audio skipped as too late.
    struct Read {
        var packets = 0
        /// Datagrams taken from the source, refused ones too (`LegMediaSource.datagramsRead`).
        var datagrams = 0
        var oldestDelay = 0.0
        /// When the newest packet read arrived (0 when none was).
        var newestArrival = 0.0
        var shedSamples = 0
    }

    /// This leg's place in its worker's read schedule (the worker's alone).
    var schedule = LegReadSchedule()

    @discardableResult
    func drain(now: Double) -> Read {
        applyPendingPayloadTypes()
        var read = Read()
        let datagramsBefore = media.datagramsRead
        let due = now - maxDelaySeconds
        read.packets = media.drain { packet in
            read.oldestDelay = max(read.oldestDelay, now - packet.arrival)
            read.newestArrival = max(read.newestArrival, packet.arrival)
            if packet.arrival < due {
                read.shedSamples += pipeline.shed(packet)
            } else {
                pipeline.handle(packet)
            }
        }
        if read.packets > 0 { lastPacketAt = now }
        read.datagrams = Int(truncatingIfNeeded: media.datagramsRead &- datagramsBefore)
        return read
    }

    /// The last read before the leg ends: everything, due or not.
    func drainAll(now: Double) {
        let n = media.drainAll { packet in pipeline.handle(packet) }
        if n > 0 { lastPacketAt = now }
    }

    /// The pipeline's counters and RFC 3550 statistics, with what the source dropped before the
    /// pipeline saw it.
    var reception: RTPTotals {
        var c = pipeline.counters, s = pipeline.statistics
        media.addDrops(to: &c, &s)
        return RTPTotals(counters: c, statistics: s)
    }

    func refreshSnapshot() {
        let p = pipeline!
        let rtp = reception
        lock.withLock {
            snapshotStorage.codec = p.codec
            snapshotStorage.payloadType = p.payloadType
            if snapshotStorage.state == "waiting", p.counters.packets > 0, p.codec != nil {
                snapshotStorage.state = "active"
            }
            snapshotStorage.mood = p.mood
            snapshotStorage.upset = p.decisions.smoothedUpset
            snapshotStorage.label = p.lastScores?.label
            snapshotStorage.escalated = p.decisions.escalated
            snapshotStorage.mediaSeconds = p.mediaSeconds
            snapshotStorage.rtp = rtp
        }
    }

    /// Flushes the last window and publishes `leg.end`.
    func end(reason: String, now: Double) {
        guard !ended else { return }
        ended = true
        pipeline.finish()
        refreshSnapshot()
        lock.withLock { snapshotStorage.state = "ended" }
        let p = pipeline!
        let summary = LegSummary(p.decisions.summary, durationSeconds: now - createdAt, mediaSeconds: p.mediaSeconds)
        send(.legEnd(LegEnd(reason: reason, summary: summary, rtp: reception)))
    }

    private func send(_ body: Event.Body) {
        let datagram = publisher.publish(body, leg: identity)
        eventSink?(body, datagram)
    }

    // MARK: Pipeline outputs → events

    private func publish(_ output: LegOutput) {
        switch output {
        case .started(let codec, let pt, let ssrc, let source):
            send(
                .legStart(
                    LegStart(
                        codec: codec, payloadType: Int(pt), ssrc: ssrc, source: source, port: media.port,
                        recording: identity.recording, stream: identity.stream)))
            refreshSnapshot()
        case .window(let window, let scores, let mood):
            // Silence gives no emotion verdict.
            guard let scores else { return }
            send(.emotion(EmotionEvent(reading: EmotionReading(window: window, scores: scores), state: mood)))
        case .stateChanged(let from, let to):
            send(.state(StateChange(from: from, to: to, mediaSeconds: pipeline.mediaSeconds)))
            refreshSnapshot()
        case .escalate(let seconds):
            send(
                .escalate(
                    Escalation(upsetSeconds: seconds, withinSeconds: pipeline.decisions.policy.escalateWithinSeconds)))
            refreshSnapshot()
        }
    }
}
