import Foundation

/// Twilio Media Streams (and the services that copy its JSON): text frames only, `connected`, then
/// `start` once (stream and call ids, tracks, custom parameters, `audio/x-mulaw` at 8000 Hz, mono),
/// then `media` (a track's base64 mu-law), `dtmf`, `mark`, and `stop`. Counters are strings.
public enum TwilioMediaStream {
    public struct Start: Equatable, Sendable {
        public var streamSid: String
        public var callSid: String
        public var tracks: [String]
        public var customParameters: [String: String]
        public var encoding: String
        public var sampleRate: Int
        public var channels: Int
    }

    public enum Message: Equatable, Sendable {
        case connected
        case start(Start)
        /// `inbound` (what the call's party says: the caller on an inbound call) or `outbound`.
        case media(track: String, payload: Data)
        case stop
        /// dtmf, mark and anything newer: read and left alone.
        case other(String)
    }

    public struct Problem: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    private struct Envelope: Decodable {
        var event: String
        var streamSid: String?
        var start: StartBody?
        var media: MediaBody?
    }

    private struct StartBody: Decodable {
        var streamSid: String?
        var callSid: String?
        var tracks: [String]?
        var customParameters: [String: String]?
        var mediaFormat: MediaFormat?
    }

    private struct MediaFormat: Decodable {
        var encoding: String
        var sampleRate: Int
        var channels: Int
    }

    private struct MediaBody: Decodable {
        var track: String?
        var payload: String
    }

    public static func parse(_ text: String) -> Result<Message, Problem> {
        // `media` is 50 messages a second per track: read its two strings without the JSON decoder (a
        // sixth of the service's CPU with 500 streams, measured with perf), and decode anything else.
        if let media = fastMedia(text) { return media }
        let envelope: Envelope
        do { envelope = try JSONDecoder().decode(Envelope.self, from: Data(text.utf8)) } catch {
            return .failure(Problem(description: "not a media stream message: \(Self.reason(error))"))
        }
        switch envelope.event {
        case "connected":
            return .success(.connected)
        case "start":
            guard let start = envelope.start else { return .failure(Problem(description: "start without `start`")) }
            guard let sid = start.streamSid ?? envelope.streamSid, !sid.isEmpty else {
                return .failure(Problem(description: "start without streamSid"))
            }
            let format = start.mediaFormat ?? MediaFormat(encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1)
            return .success(
                .start(
                    Start(
                        streamSid: sid, callSid: start.callSid ?? sid, tracks: start.tracks ?? ["inbound"],
                        customParameters: start.customParameters ?? [:], encoding: format.encoding,
                        sampleRate: format.sampleRate, channels: format.channels)))
        case "media":
            guard let media = envelope.media else { return .failure(Problem(description: "media without `media`")) }
            guard let payload = Data(base64Encoded: media.payload), !payload.isEmpty else {
                return .failure(Problem(description: "media payload is not base64 audio"))
            }
            return .success(.media(track: media.track ?? "inbound", payload: payload))
        case "stop":
            return .success(.stop)
        default:
            return .success(.other(envelope.event))
        }
    }

    /// A `media` message's track and payload, when the message is one and both are plain strings (base64
    /// and track names have no escapes); nil sends the message to the decoder.
    static func fastMedia(_ text: String) -> Result<Message, Problem>? {
        var text = text
        return text.withUTF8 { bytes -> Result<Message, Problem>? in
            guard let event = stringValue(of: "event", in: bytes), event.elementsEqual("media".utf8),
                let payload = stringValue(of: "payload", in: bytes)
            else { return nil }
            let track = stringValue(of: "track", in: bytes).map { String(decoding: $0, as: UTF8.self) } ?? "inbound"
            guard let data = Data(base64Encoded: Data(payload)), !data.isEmpty else {
                return .failure(Problem(description: "media payload is not base64 audio"))
            }
            return .success(.media(track: track, payload: data))
        }
    }

    /// The bytes of `"key":"value"`'s value (whitespace allowed around the colon), the first occurrence;
    /// nil when the key is missing or its value is not a string without escapes.
    static func stringValue(of key: String, in bytes: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        let needle = Array("\"\(key)\"".utf8)
        let n = bytes.count
        var i = 0
        while i + needle.count <= n {
            var match = true
            for j in 0..<needle.count where bytes[i + j] != needle[j] {
                match = false
                break
            }
            guard match else {
                i += 1
                continue
            }
            var k = i + needle.count
            while k < n, bytes[k] == 0x20 || bytes[k] == 0x09 { k += 1 }
            guard k < n, bytes[k] == 0x3a else { return nil }  // ':'
            k += 1
            while k < n, bytes[k] == 0x20 || bytes[k] == 0x09 { k += 1 }
            guard k < n, bytes[k] == 0x22 else { return nil }  // a string
            let start = k + 1
            var end = start
            while end < n, bytes[end] != 0x22 {
                if bytes[end] == 0x5c { return nil }  // an escape: the decoder's job
                end += 1
            }
            guard end < n else { return nil }
            return UnsafeBufferPointer(rebasing: bytes[start..<end])
        }
        return nil
    }

    static func reason(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "`\(key.stringValue)` is missing"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "`\(c.codingPath.map(\.stringValue).joined(separator: "."))` has the wrong type"
        default: return "invalid JSON"
        }
    }
}
