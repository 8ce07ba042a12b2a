import EmotionCore
import EmotionMedia

/// One event of protocol v1 (docs/PROTOCOL.md, config/event-schema.json): the common header, then
/// the fields of its type. Every producer encodes through `serialized()` and every consumer decodes
/// with `Event(decoding:)`, so the wire format is written down once.
public struct Event: Sendable, Equatable {
    public static let version = 1
    /// Datagrams stay under this many bytes.
    public static let maxDatagram = 1199

    /// Per process, strictly increasing.
    public var sequence: Int64
    /// RFC 3339 UTC with milliseconds.
    public var timestamp: String
    /// Every event but `heartbeat` is about one leg.
    public var leg: LegIdentity?
    public var body: Body
    /// HMAC-SHA256 over the event serialised without it (see `EventSigner`); nil when unsigned.
    public var signature: String?

    public init(sequence: Int64, timestamp: String, leg: LegIdentity?, body: Body, signature: String? = nil) {
        self.sequence = sequence
        self.timestamp = timestamp
        self.leg = leg
        self.body = body
        self.signature = signature
    }

    public enum Body: Sendable, Equatable {
        case legStart(LegStart)
        case emotion(EmotionEvent)
        case state(StateChange)
        case escalate(Escalation)
        case legEnd(LegEnd)
        case heartbeat(Heartbeat)

        public var type: String {
            switch self {
            case .legStart: "leg.start"
            case .emotion: "emotion"
            case .state: "state"
            case .escalate: "escalate"
            case .legEnd: "leg.end"
            case .heartbeat: "heartbeat"
            }
        }

        /// The type's own fields, in wire order.
        public var fields: [(String, JSON)] {
            switch self {
            case .legStart(let e): e.fields
            case .emotion(let e): e.fields
            case .state(let e): e.fields
            case .escalate(let e): e.fields
            case .legEnd(let e): e.fields
            case .heartbeat(let e): e.fields
            }
        }
    }

    public var type: String { body.type }

    /// The event as sent, without its signature: `v`, `type`, `seq`, `ts`, the leg, then the body.
    public func serialized() -> String {
        var object: [(String, JSON)] = [
            ("v", .count(Self.version)), ("type", .string(type)), ("seq", .int(sequence)),
            ("ts", .string(timestamp)),
        ]
        if let leg {
            object += [("call_id", .string(leg.callID)), ("leg_id", .string(leg.legID)), ("role", .string(leg.role))]
            // Who handles the call travels at the leg's start and end only: the events in between stay small.
            if type == "leg.start" || type == "leg.end" {
                if let agent = leg.agentID { object.append(("agent_id", .string(agent))) }
                if !leg.tags.isEmpty {
                    object.append(
                        ("tags", .object(leg.tags.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
                }
            }
        }
        return JSON.object(object + body.fields).serialized
    }
}

// MARK: The event types

/// `leg.start`: the first audio packet of a leg.
public struct LegStart: Sendable, Equatable {
    public var codec: VoiceCodec
    public var payloadType: Int
    public var ssrc: UInt32
    /// The sender, "host:port".
    public var source: String?
    /// The local port the leg listens on.
    public var port: Int
    /// SIPREC legs: the recording session, the stream's label and its participant (written so a wrong
    /// label-to-participant mapping can be seen).
    public var recording: RecordedStream?
    /// Stream legs (AudioSocket, WebSocket): the protocol and the switch's id of the stream; `port` is
    /// then the listener's (the AudioSocket or HTTP port), `ssrc` and `payload_type` the leg's own.
    public var stream: StreamOrigin?

    public init(
        codec: VoiceCodec, payloadType: Int, ssrc: UInt32, source: String?, port: Int,
        recording: RecordedStream? = nil, stream: StreamOrigin? = nil
    ) {
        self.codec = codec
        self.payloadType = payloadType
        self.ssrc = ssrc
        self.source = source
        self.port = port
        self.recording = recording
        self.stream = stream
    }

    var fields: [(String, JSON)] {
        var f: [(String, JSON)] = [
            ("codec", .string(codec.rawValue)), ("payload_type", .count(payloadType)), ("ssrc", .count(ssrc)),
            ("source", .optional(source)), ("port", .count(port)),
        ]
        if let recording {
            f += [
                ("recording_session", .string(recording.session)), ("label", .optional(recording.label)),
                ("participant", .optional(recording.participant)),
            ]
        }
        if let stream { f += [("stream", .string(stream.kind)), ("stream_id", .string(stream.id))] }
        return f
    }
}

/// One window's verdict as the live `emotion` event and the offline `analyze` both write it. Values
/// are rounded as on the wire, so a decoded reading equals the one that was sent.
public struct EmotionReading: Sendable, Equatable {
    public var start: Double
    public var end: Double
    /// Share of the window that is speech.
    public var speech: Double
    /// nil for a window without enough speech (no verdict).
    public var upset: Double?
    public var label: Emotion?
    /// Probabilities in `Emotion.allCases` order.
    public var scores: [Double]?

    public init(start: Double, end: Double, speech: Double, upset: Double?, label: Emotion?, scores: [Double]?) {
        self.start = start
        self.end = end
        self.speech = speech
        self.upset = upset
        self.label = label
        self.scores = scores
    }

    public init(window: WindowFeatures, scores: EmotionScores?) {
        start = Rounding.round(window.start, 2)
        end = Rounding.round(window.end, 2)
        speech = Rounding.round(window.speechFraction, 3)
        upset = scores.map { Rounding.round(Double($0.upset), 4) }
        label = scores?.label
        self.scores = scores?.probabilities.map { Rounding.round(Double($0), 4) }
    }

    var span: [(String, JSON)] { [("start", .double(start)), ("end", .double(end)), ("speech", .double(speech))] }
    var upsetField: (String, JSON) { ("upset", upset.map { .double($0) } ?? .null) }
    var verdict: [(String, JSON)] {
        [
            ("label", .optional(label?.rawValue)),
            (
                "scores",
                scores.map { s in .object(zip(Emotion.allCases, s).map { ($0.rawValue, .double($1)) }) } ?? .null
            ),
        ]
    }

    /// The offline form: `analyze` prints this object a window (with `file` first for several files).
    public func fields(file: String? = nil) -> [(String, JSON)] {
        (file.map { [("file", JSON.string($0))] } ?? []) + span + [upsetField] + verdict
    }
}

/// `emotion`: a window with a verdict, and the leg's state after it.
public struct EmotionEvent: Sendable, Equatable {
    public var reading: EmotionReading
    public var state: LegMood

    public init(reading: EmotionReading, state: LegMood) {
        self.reading = reading
        self.state = state
    }

    var fields: [(String, JSON)] {
        reading.span + [reading.upsetField, ("state", .string(state.rawValue))] + reading.verdict
    }
}

/// `state`: the leg turned upset or calm.
public struct StateChange: Sendable, Equatable {
    public var from: LegMood
    public var to: LegMood
    public var mediaSeconds: Double

    public init(from: LegMood, to: LegMood, mediaSeconds: Double) {
        self.from = from
        self.to = to
        self.mediaSeconds = Rounding.round(mediaSeconds, 2)
    }

    var fields: [(String, JSON)] {
        [("from", .string(from.rawValue)), ("to", .string(to.rawValue)), ("media_s", .double(mediaSeconds))]
    }
}

/// `escalate`: a customer stayed upset.
public struct Escalation: Sendable, Equatable {
    public var reason: String
    public var upsetSeconds: Double
    public var withinSeconds: Double

    public init(reason: String = "upset_sustained", upsetSeconds: Double, withinSeconds: Double) {
        self.reason = reason
        self.upsetSeconds = Rounding.round(upsetSeconds, 1)
        self.withinSeconds = Rounding.round(withinSeconds, 1)
    }

    var fields: [(String, JSON)] {
        [("reason", .string(reason)), ("upset_s", .double(upsetSeconds)), ("within_s", .double(withinSeconds))]
    }
}

/// `leg.end`: why the leg ended, its summary for coaching, and its reception counters.
public struct LegEnd: Sendable, Equatable {
    public var reason: String
    public var summary: LegSummary
    public var rtp: RTPTotals

    public init(reason: String, summary: LegSummary, rtp: RTPTotals) {
        self.reason = reason
        self.summary = summary
        self.rtp = rtp
    }

    var fields: [(String, JSON)] {
        [
            ("reason", .string(reason)), ("summary", .object(summary.fields)),
            ("rtp", .object(RTPTotalsCoding.fields(rtp))),
        ]
    }
}

/// What a leg sounded like overall.
public struct LegSummary: Sendable, Equatable {
    public var durationSeconds: Double
    public var mediaSeconds: Double
    public var speechSeconds: Double
    public var upsetFraction: Double
    public var peakUpset: Double
    /// Share of speech per emotion, in `Emotion.allCases` order.
    public var emotionMix: [Double]
    public var startUpset: Double?
    public var endUpset: Double?
    public var endedCalmer: Bool?
    public var escalations: Int

    public init(
        durationSeconds: Double, mediaSeconds: Double, speechSeconds: Double, upsetFraction: Double, peakUpset: Double,
        emotionMix: [Double], startUpset: Double?, endUpset: Double?, endedCalmer: Bool?, escalations: Int
    ) {
        self.durationSeconds = Rounding.round(durationSeconds, 2)
        self.mediaSeconds = Rounding.round(mediaSeconds, 2)
        self.speechSeconds = Rounding.round(speechSeconds, 2)
        self.upsetFraction = Rounding.round(upsetFraction, 3)
        self.peakUpset = Rounding.round(peakUpset, 3)
        self.emotionMix = emotionMix.map { Rounding.round($0, 3) }
        self.startUpset = startUpset.map { Rounding.round($0, 3) }
        self.endUpset = endUpset.map { Rounding.round($0, 3) }
        self.endedCalmer = endedCalmer
        self.escalations = escalations
    }

    public init(_ s: LegDecisions.Summary, durationSeconds: Double, mediaSeconds: Double) {
        self.init(
            durationSeconds: durationSeconds, mediaSeconds: mediaSeconds, speechSeconds: s.speechSeconds,
            upsetFraction: s.upsetFraction, peakUpset: s.peakUpset,
            emotionMix: Emotion.allCases.map { s.emotionMix[$0.rawValue] ?? 0 },
            startUpset: s.startUpset, endUpset: s.endUpset, endedCalmer: s.endedCalmer, escalations: s.escalations)
    }

    var fields: [(String, JSON)] {
        [
            ("duration_s", .double(durationSeconds)), ("media_s", .double(mediaSeconds)),
            ("speech_s", .double(speechSeconds)),
            ("upset_fraction", .double(upsetFraction)), ("peak_upset", .double(peakUpset)),
            ("emotion_mix", .object(zip(Emotion.allCases, emotionMix).map { ($0.rawValue, .double($1)) })),
            ("start_upset", startUpset.map { .double($0) } ?? .null),
            ("end_upset", endUpset.map { .double($0) } ?? .null),
            ("ended_calmer", endedCalmer.map { .bool($0) } ?? .null), ("escalations", .count(escalations)),
        ]
    }
}

/// `heartbeat`: the process is alive, with this many legs.
public struct Heartbeat: Sendable, Equatable {
    public var legs: Int
    public init(legs: Int) { self.legs = legs }
    var fields: [(String, JSON)] { [("legs", .count(legs))] }
}

// MARK: Helpers

/// Reception counters on the wire: the one counter table, as `leg.end` and `GET /v1/legs` write it.
public enum RTPTotalsCoding {
    public static func fields(_ totals: RTPTotals) -> [(String, JSON)] {
        RTPTotals.fields.map { field in
            switch field.value {
            case .count(let path): (field.name, JSON.count(totals[keyPath: path]))
            case .milliseconds(let path): (field.name, JSON.number(totals[keyPath: path], places: 2))
            }
        }
    }
}

enum Rounding {
    /// Rounded as `JSON.number(_:places:)` writes it.
    static func round(_ v: Double, _ places: Int) -> Double {
        guard v.isFinite else { return v }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (v * scale).rounded() / scale
    }
}
