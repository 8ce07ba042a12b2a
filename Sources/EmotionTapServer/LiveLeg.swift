import EmotionCore
import EmotionRTP
import Foundation

/// What the API shows of a leg; refreshed by its worker about once a second and on every change.
public struct LegSnapshot: Sendable {
    public var identity: LegIdentity
    public var port: Int
    public var requestedCodec: VoiceCodec?
    public var codec: VoiceCodec?
    public var payloadType: UInt8?
    public var state: String = "waiting"      // waiting (no RTP yet), active, ended
    public var mood: LegMood = .calm
    public var upset: Double?                  // smoothed upset level
    public var label: Emotion?
    public var escalated = false
    public var mediaSeconds = 0.0
    public var created: Date
    public var statistics = ReceptionStatistics(clockRate: 8000)
    public var counters = LegCounters()
}

/// One leg in the service: its oRTP session, its media pipeline, and the events it publishes.
/// Owned by one worker thread; only `snapshot` is read from elsewhere, under its lock.
final class LiveLeg: @unchecked Sendable {
    // `pipeline` and `session` are touched by the owning worker only; `snapshotStorage` under `lock`.
    let identity: LegIdentity
    let session: RTPReceiveSession
    private(set) var pipeline: LegPipeline!
    private let publisher: EventPublisher
    private let lock = NSLock()
    private var snapshotStorage: LegSnapshot
    var lastPacketAt: Double
    let createdAt: Double
    private(set) var ended = false

    init(identity: LegIdentity, session: RTPReceiveSession, codec: VoiceCodec?, model: EmotionModel, policy: LegPolicy,
         telephoneEventPayloadType: UInt8, sourcePolicy: SourcePolicy, publisher: EventPublisher) throws {
        self.identity = identity
        self.session = session
        self.publisher = publisher
        let now = Date()
        createdAt = now.timeIntervalSince1970
        lastPacketAt = createdAt
        snapshotStorage = LegSnapshot(identity: identity, port: session.port, requestedCodec: codec, created: now)
        pipeline = try LegPipeline(identity: identity, codec: codec, telephoneEventPayloadType: telephoneEventPayloadType,
                                   sourcePolicy: sourcePolicy, model: model, policy: policy) { [unowned self] output in self.publish(output) }
    }

    var snapshot: LegSnapshot { lock.withLock { snapshotStorage } }

    /// Reads what is queued on the socket (and due, with a jitter buffer).
    func drain(now: Double) {
        let n = session.drain { packet in pipeline.handle(packet) }
        if n > 0 { lastPacketAt = now }
    }

    /// The last read before the leg ends: everything, due or not.
    func drainAll(now: Double) {
        let n = session.drainAll { packet in pipeline.handle(packet) }
        if n > 0 { lastPacketAt = now }
    }

    /// The pipeline's counters and RFC 3550 statistics, with what oRTP dropped before the pipeline
    /// saw it (one read of oRTP's counters for both).
    var reception: (counters: LegCounters, statistics: ReceptionStatistics) {
        var c = pipeline.counters, s = pipeline.statistics
        let library = session.libraryStatistics
        c.malformed = library.bad &+ session.malformed
        c.queueOverflow = library.discarded
        // Packets older than what the leg already played: oRTP drops them before the pipeline sees them.
        c.late &+= library.outoftime
        s.lateBeforeDelivery = library.outoftime
        s.duplicatesBeforeDelivery = library.packet_dup_recv
        return (c, s)
    }

    func refreshSnapshot() {
        let p = pipeline!
        let (counters, statistics) = reception
        lock.withLock {
            snapshotStorage.codec = p.codec
            snapshotStorage.payloadType = p.payloadType
            if snapshotStorage.state == "waiting", p.counters.packets > 0, p.codec != nil { snapshotStorage.state = "active" }
            snapshotStorage.mood = p.mood
            snapshotStorage.upset = p.decisions.smoothedUpset
            snapshotStorage.label = p.lastScores?.label
            snapshotStorage.escalated = p.decisions.escalated
            snapshotStorage.mediaSeconds = p.mediaSeconds
            snapshotStorage.statistics = statistics
            snapshotStorage.counters = counters
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
        let s = p.decisions.summary
        let (c, stats) = reception
        var summary: [(String, JSON)] = [
            ("duration_s", .number(now - createdAt, places: 2)), ("media_s", .number(p.mediaSeconds, places: 2)),
            ("speech_s", .number(s.speechSeconds, places: 2)), ("upset_fraction", .number(s.upsetFraction, places: 3)),
            ("peak_upset", .number(s.peakUpset, places: 3)),
            ("emotion_mix", .object(Emotion.allCases.map { ($0.rawValue, .number(s.emotionMix[$0.rawValue] ?? 0, places: 3)) })),
        ]
        summary.append(("start_upset", s.startUpset.map { .number($0, places: 3) } ?? .null))
        summary.append(("end_upset", s.endUpset.map { .number($0, places: 3) } ?? .null))
        summary.append(("ended_calmer", s.endedCalmer.map { .bool($0) } ?? .null))
        summary.append(("escalations", .int(Int64(s.escalations))))
        let rtp: [(String, JSON)] = [
            ("packets", .int(Int64(c.packets))), ("received", .int(Int64(stats.arrived))), ("expected", .int(Int64(stats.expected))),
            ("lost", .int(Int64(stats.lost))), ("reordered", .int(Int64(stats.reordered))), ("duplicates", .int(Int64(stats.allDuplicates))),
            ("late", .int(Int64(c.late))), ("jitter_ms", .number(stats.jitterMilliseconds, places: 2)),
            ("ssrc_changes", .int(Int64(stats.ssrcChanges))), ("concealed_ms", .int(Int64(c.concealedMilliseconds))),
            ("comfort_noise", .int(Int64(c.comfortNoise))), ("telephone_events", .int(Int64(c.telephoneEvents))),
            ("unknown_payload_type", .int(Int64(c.unknownPayloadType))), ("undecodable", .int(Int64(c.undecodable))),
            ("source_not_allowed", .int(Int64(c.sourceNotAllowed))), ("wrong_source", .int(Int64(c.wrongSource))),
            ("malformed", .int(Int64(c.malformed))), ("queue_overflow", .int(Int64(c.queueOverflow))),
        ]
        publisher.publish(type: "leg.end", leg: identity, fields: [("reason", .string(reason)), ("summary", .object(summary)), ("rtp", .object(rtp))])
    }

    // MARK: Pipeline outputs → events

    private func publish(_ output: LegOutput) {
        switch output {
        case .started(let codec, let pt, let ssrc, let source):
            publisher.publish(type: "leg.start", leg: identity, fields: [
                ("codec", .string(codec.rawValue)), ("payload_type", .int(Int64(pt))), ("ssrc", .int(Int64(ssrc))),
                ("source", .optional(source)), ("port", .int(Int64(session.port))),
            ])
            refreshSnapshot()
        case .window(let window, let scores, let mood):
            // Silence gives no emotion verdict.
            guard let scores else { return }
            publisher.publish(type: "emotion", leg: identity, fields: [
                ("start", .number(window.start, places: 2)), ("end", .number(window.end, places: 2)),
                ("speech", .number(window.speechFraction, places: 3)), ("upset", .number(scores.upset, places: 4)),
                ("state", .string(mood.rawValue)), ("label", .string(scores.label.rawValue)),
                ("scores", .object(zip(Emotion.allCases, scores.probabilities).map { ($0.rawValue, .number($1, places: 4)) })),
            ])
        case .stateChanged(let from, let to):
            publisher.publish(type: "state", leg: identity, fields: [("from", .string(from.rawValue)), ("to", .string(to.rawValue)),
                                                                     ("media_s", .number(pipeline.mediaSeconds, places: 2))])
            refreshSnapshot()
        case .escalate(let seconds):
            publisher.publish(type: "escalate", leg: identity, fields: [
                ("reason", "upset_sustained"), ("upset_s", .number(seconds, places: 1)),
                ("within_s", .number(pipeline.decisions.policy.escalateWithinSeconds, places: 1)),
            ])
            refreshSnapshot()
        }
    }
}
