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

    static func reason(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "`\(key.stringValue)` is missing"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "`\(c.codingPath.map(\.stringValue).joined(separator: "."))` has the wrong type"
        default: return "invalid JSON"
        }
    }
}
