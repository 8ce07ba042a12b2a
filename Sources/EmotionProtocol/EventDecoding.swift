import EmotionCore
import EmotionMedia
import Foundation

/// Why a datagram is not an event of protocol v1; names the field.
public struct EventDecodingError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension Event {
    /// Decodes one datagram (or JSONL line). Unknown extra fields are ignored, as the protocol allows.
    public init(decoding text: String) throws(EventDecodingError) {
        try self.init(decoding: Data(text.utf8))
    }

    public init(decoding data: Data) throws(EventDecodingError) {
        let r = FieldReader(object: try JSONValue.parse(data), path: "")
        guard try r.int("v") == Event.version else {
            throw EventDecodingError("v: not protocol version \(Event.version)")
        }
        let type = try r.string("type")
        sequence = Int64(try r.int("seq"))
        timestamp = try r.string("ts")
        signature = try r.optionalString("sig")
        if r.has("leg_id") || type != "heartbeat" {
            var tags: [String: String] = [:]
            if r.has("tags") {
                let t = try r.object("tags")
                for key in t.object.keys { tags[key] = try t.string(key) }
            }
            leg = LegIdentity(
                callID: try r.string("call_id"), legID: try r.string("leg_id"), role: try r.string("role"),
                agentID: try r.optionalString("agent_id"), tags: tags)
        } else {
            leg = nil
        }
        switch type {
        case "leg.start":
            let codecName = try r.string("codec")
            guard let codec = VoiceCodec(rawValue: codecName) else {
                throw EventDecodingError("codec: unknown '\(codecName)'")
            }
            body = .legStart(
                LegStart(
                    codec: codec, payloadType: try r.int("payload_type"), ssrc: UInt32(clamping: try r.int("ssrc")),
                    source: try r.optionalString("source"), port: try r.int("port"),
                    recording: try r.optionalString("recording_session").map { session throws(EventDecodingError) in
                        RecordedStream(
                            session: session, label: try r.optionalString("label"),
                            participant: try r.optionalString("participant"))
                    },
                    stream: try r.optionalString("stream").map { kind throws(EventDecodingError) in
                        StreamOrigin(kind: kind, id: try r.string("stream_id"))
                    }))
        case "emotion":
            let stateName = try r.string("state")
            guard let state = LegMood(rawValue: stateName) else {
                throw EventDecodingError("state: unknown '\(stateName)'")
            }
            body = .emotion(EmotionEvent(reading: try EmotionReading(r), state: state))
        case "state":
            body = .state(
                StateChange(from: try r.mood("from"), to: try r.mood("to"), mediaSeconds: try r.double("media_s")))
        case "escalate":
            body = .escalate(
                Escalation(
                    reason: try r.string("reason"), upsetSeconds: try r.double("upset_s"),
                    withinSeconds: try r.double("within_s")))
        case "leg.end":
            let s = try r.object("summary")
            let mix = try s.object("emotion_mix")
            let summary = LegSummary(
                durationSeconds: try s.double("duration_s"), mediaSeconds: try s.double("media_s"),
                speechSeconds: try s.double("speech_s"),
                upsetFraction: try s.double("upset_fraction"), peakUpset: try s.double("peak_upset"),
                emotionMix: try Emotion.allCases.map { e throws(EventDecodingError) in try mix.double(e.rawValue) },
                startUpset: try s.optionalDouble("start_upset"), endUpset: try s.optionalDouble("end_upset"),
                endedCalmer: try s.optionalBool("ended_calmer"), escalations: try s.int("escalations"))
            body = .legEnd(
                LegEnd(
                    reason: try r.string("reason"), summary: summary,
                    rtp: try RTPTotalsCoding.decode(try r.object("rtp"))))
        case "heartbeat":
            body = .heartbeat(Heartbeat(legs: try r.int("legs")))
        default:
            throw EventDecodingError("type: unknown '\(type)'")
        }
    }
}

extension EmotionReading {
    /// Reads the fields `fields(file:)` writes (the `emotion` event's and `analyze`'s alike).
    init(_ r: FieldReader) throws(EventDecodingError) {
        start = try r.double("start")
        end = try r.double("end")
        speech = try r.double("speech")
        upset = try r.optionalDouble("upset")
        if let name = try r.optionalString("label") {
            guard let e = Emotion(rawValue: name) else { throw EventDecodingError("label: unknown '\(name)'") }
            label = e
        } else {
            label = nil
        }
        if r.isNull("scores") {
            scores = nil
        } else {
            let s = try r.object("scores")
            scores = try Emotion.allCases.map { e throws(EventDecodingError) in try s.double(e.rawValue) }
        }
    }

    /// Decodes one line of `emotiontap analyze` output.
    public init(decoding text: String) throws(EventDecodingError) {
        try self.init(FieldReader(object: try JSONValue.parse(Data(text.utf8)), path: ""))
    }
}

extension RTPTotalsCoding {
    static func decode(_ r: FieldReader) throws(EventDecodingError) -> RTPTotals {
        var totals = RTPTotals()
        for field in RTPTotals.fields {
            switch field.value {
            case .count(let path): totals[keyPath: path] = UInt64(clamping: try r.int(field.name))
            case .milliseconds(let path): totals[keyPath: path] = try r.double(field.name)
            }
        }
        return totals
    }
}

/// A decoded JSON value: booleans, numbers and strings kept apart (JSONSerialization's NSNumber
/// blurs `true` and `1`).
enum JSONValue: Decodable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    static func parse(_ data: Data) throws(EventDecodingError) -> [String: JSONValue] {
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw EventDecodingError("not JSON")
        }
        guard case .object(let o) = value else { throw EventDecodingError("not a JSON object") }
        return o
    }
}

/// Typed reads out of a decoded JSON object, naming the field in every error.
struct FieldReader {
    let object: [String: JSONValue]
    let path: String

    private func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func has(_ key: String) -> Bool { object[key] != nil }

    func isNull(_ key: String) -> Bool {
        if case .null = object[key] ?? .null { return true }
        return false
    }

    func string(_ key: String) throws(EventDecodingError) -> String {
        guard case .string(let v) = object[key] else { throw EventDecodingError("\(name(key)): a string is required") }
        return v
    }

    func optionalString(_ key: String) throws(EventDecodingError) -> String? { isNull(key) ? nil : try string(key) }

    func double(_ key: String) throws(EventDecodingError) -> Double {
        guard case .number(let v) = object[key], v.isFinite else {
            throw EventDecodingError("\(name(key)): a number is required")
        }
        return v
    }

    func optionalDouble(_ key: String) throws(EventDecodingError) -> Double? { isNull(key) ? nil : try double(key) }

    func int(_ key: String) throws(EventDecodingError) -> Int {
        guard case .number(let d) = object[key], d == d.rounded(), abs(d) < 9e15 else {
            throw EventDecodingError("\(name(key)): an integer is required")
        }
        return Int(d)
    }

    func optionalBool(_ key: String) throws(EventDecodingError) -> Bool? {
        if isNull(key) { return nil }
        guard case .bool(let b) = object[key] else {
            throw EventDecodingError("\(name(key)): true or false is required")
        }
        return b
    }

    func object(_ key: String) throws(EventDecodingError) -> FieldReader {
        guard case .object(let o) = object[key] else { throw EventDecodingError("\(name(key)): an object is required") }
        return FieldReader(object: o, path: name(key))
    }

    func mood(_ key: String) throws(EventDecodingError) -> LegMood {
        let text = try string(key)
        guard let m = LegMood(rawValue: text) else {
            throw EventDecodingError("\(name(key)): calm or upset is required")
        }
        return m
    }
}
