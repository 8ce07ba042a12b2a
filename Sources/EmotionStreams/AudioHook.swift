import Foundation

/// Genesys Cloud AudioHook protocol v2, the server's side, without sockets: JSON text messages in an
/// envelope (`version` "2", `type`, `seq`, `serverseq`/`clientseq`, `id`, `position`, `parameters`),
/// binary frames of audio (PCMU, channels interleaved in the order the `open` names them: `external`
/// is the customer, `internal` the agent). Genesys opens (`open`, answered by `opened` within 5 s),
/// pings (`pong`), pauses and resumes, and closes (`close`, answered by `closed`); the server may send
/// `event`s and ask to `disconnect`. Each side numbers its messages from 1, one by one.
public struct AudioHookSession: Sendable {
    /// `disconnecting`: we asked the client to end (after an error); its `close` gets `closed`.
    public enum State: Sendable, Equatable { case awaitingOpen, active, paused, closing, disconnecting, closed }

    public struct Media: Sendable, Equatable {
        public var format: String
        public var channels: [String]
        public var rate: Int
        /// The offer as Genesys sent it: `opened` must repeat it exactly.
        public var json: String
    }

    public struct Open: Sendable, Equatable {
        public var organizationID: String
        public var conversationID: String
        public var participantID: String?
        public var media: Media?
        public var language: String?
        /// A connection probe (Genesys checks the endpoint when an integration is activated): the null
        /// conversation id. Answered like a call, but no legs are made.
        public var isProbe: Bool { conversationID == "00000000-0000-0000-0000-000000000000" }
    }

    /// What the connection has to do after a message.
    public enum Action: Sendable, Equatable {
        case send(String)
        /// The session opened: make the legs (none for a probe or `media: []`).
        case start(Open)
        case pause
        case resume
        /// The client closes: end the legs (their last events may still go out), then send `closed`.
        case close(reason: String)
        /// The session is broken: the message was sent; end the legs and drop the connection.
        case fail(String)
    }

    public let sessionID: String
    public private(set) var state: State = .awaitingOpen
    /// Our last `seq`, and the client's.
    public private(set) var serverSeq = 0
    public private(set) var clientSeq = 0
    /// How far the client says the audio is (ISO 8601 `PT12.34S`), seconds.
    public private(set) var position = 0.0
    public private(set) var selected: Media?

    public init(sessionID: String) { self.sessionID = sessionID }

    /// One text message from the client.
    public mutating func receive(_ text: String) -> [Action] {
        guard let data = text.data(using: .utf8),
            let message = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return fail("message is not a JSON object") }
        guard let type = message["type"] as? String else { return fail("message has no type") }
        switch state {
        case .closed: return []
        case .disconnecting:
            guard type == "close" else { return [] }
            clientSeq = message["seq"] as? Int ?? clientSeq
            return [.send(closed()), .close(reason: "disconnect")]
        default: break
        }
        guard message["version"] as? String == "2" else { return fail("version must be \"2\"") }
        guard let seq = message["seq"] as? Int else { return fail("message has no seq") }
        guard seq == clientSeq + 1 else {
            return fail("Invalid seq value (expected \(clientSeq + 1), got \(seq))")
        }
        clientSeq = seq
        guard message["id"] as? String == sessionID else { return fail("id is not this session's") }
        if let p = message["position"] as? String, let seconds = Self.seconds(p) { position = seconds }
        let parameters = message["parameters"] as? [String: Any] ?? [:]
        switch (type, state) {
        case ("open", .awaitingOpen):
            return open(parameters)
        case ("open", _):
            return fail("open twice")
        case (_, .awaitingOpen):
            return fail("\(type) before open")
        case ("ping", _):
            return [.send(reply("pong", [:]))]
        case ("paused", .active):
            state = .paused
            return [.pause]
        case ("resumed", .paused):
            state = .active
            return [.resume]
        case ("paused", _), ("resumed", _), ("discarded", _), ("update", _):
            return []
        case ("close", .active), ("close", .paused):
            state = .closing
            return [.close(reason: parameters["reason"] as? String ?? "end")]
        case ("error", _):
            // The client reports a problem and will close; nothing to answer.
            return []
        default:
            return []
        }
    }

    /// Answers the client's first message with `disconnect` (reason `unauthorized`: its credentials
    /// failed before the upgrade); its `close` then gets `closed`.
    public mutating func reject(_ text: String, info: String) -> String {
        if let data = text.data(using: .utf8),
            let message = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let seq = message["seq"] as? Int
        {
            clientSeq = seq
        }
        return disconnect(reason: "unauthorized", info: info)
    }

    /// After the legs of a `close` have ended.
    public mutating func closed() -> String {
        state = .closed
        return reply("closed", [:])
    }

    /// An `event` carrying one EmotionTap event (its datagram, as is) as the entity's data.
    public mutating func event(datagram: String) -> String {
        serverSeq += 1
        return
            "{\"version\":\"2\",\"type\":\"event\",\"seq\":\(serverSeq),\"clientseq\":\(clientSeq),"
            + "\"id\":\"\(sessionID)\",\"parameters\":{\"entities\":[{\"type\":\"emotiontap\",\"data\":\(datagram)}]}}"
    }

    /// Asks the client to end the session (`completed`, `unauthorized`, `error`).
    public mutating func disconnect(reason: String, info: String) -> String {
        if state != .closed { state = .disconnecting }
        return reply("disconnect", ["reason": reason, "info": info])
    }

    /// Whether a binary frame may come now (audio outside an open, unpaused session is a client error).
    public var acceptsAudio: Bool { state == .active || state == .paused || state == .closing }

    private mutating func open(_ p: [String: Any]) -> [Action] {
        guard let org = p["organizationId"] as? String, let conversation = p["conversationId"] as? String,
            !conversation.isEmpty
        else { return fail("open needs organizationId and conversationId") }
        let offers = p["media"] as? [[String: Any]] ?? []
        let media = Self.choose(offers)
        if !offers.isEmpty, media == nil {
            return fail("no offered media is supported (PCMU at 8000 Hz, one or two channels of external and internal)")
        }
        selected = media
        state = .active
        let participant = (p["participant"] as? [String: Any])?["id"] as? String
        let opened = Open(
            organizationID: org, conversationID: conversation, participantID: participant, media: media,
            language: p["language"] as? String)
        serverSeq += 1
        let mediaJSON = media.map { "[\($0.json)]" } ?? "[]"
        let text =
            "{\"version\":\"2\",\"type\":\"opened\",\"seq\":\(serverSeq),\"clientseq\":\(clientSeq),"
            + "\"id\":\"\(sessionID)\",\"parameters\":{\"startPaused\":false,\"media\":\(mediaJSON)}}"
        return [.send(text), .start(opened)]
    }

    /// The first stereo PCMU offer, else the first mono one.
    static func choose(_ offers: [[String: Any]]) -> Media? {
        var candidates: [Media] = []
        for o in offers {
            guard o["type"] as? String ?? "audio" == "audio", let format = o["format"] as? String,
                format == "PCMU", let channels = o["channels"] as? [String], (1...2).contains(channels.count),
                Set(channels).count == channels.count,
                channels.allSatisfy({ $0 == "external" || $0 == "internal" }),
                o["rate"] as? Int ?? 8000 == 8000,
                let json = try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]),
                let text = String(data: json, encoding: .utf8)
            else { continue }
            candidates.append(Media(format: format, channels: channels, rate: 8000, json: text))
        }
        return candidates.first { $0.channels.count == 2 } ?? candidates.first
    }

    private mutating func fail(_ info: String) -> [Action] {
        guard state != .disconnecting, state != .closed else { return [] }
        let text = disconnect(reason: "error", info: info)
        state = .disconnecting
        return [.send(text), .fail(info)]
    }

    /// Asks the client to end the session after a problem the connection found (an audio frame out of
    /// place, a bad frame): `disconnect` with reason `error`; the client's `close` is answered.
    public mutating func abort(_ info: String) -> [Action] { fail(info) }

    private mutating func reply(_ type: String, _ parameters: [String: String]) -> String {
        serverSeq += 1
        let params = parameters.keys.sorted().map { "\"\($0)\":\(Self.quoted(parameters[$0]!))" }.joined(separator: ",")
        return
            "{\"version\":\"2\",\"type\":\"\(type)\",\"seq\":\(serverSeq),\"clientseq\":\(clientSeq),"
            + "\"id\":\"\(sessionID)\",\"parameters\":{\(params)}}"
    }

    static func quoted(_ s: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [s], options: [])
        let array = data.flatMap { String(data: $0, encoding: .utf8) } ?? "[\"\"]"
        return String(array.dropFirst().dropLast())
    }

    /// `PT12.34S` (also with minutes and hours) in seconds.
    static func seconds(_ iso: String) -> Double? {
        guard iso.hasPrefix("PT") else { return nil }
        var total = 0.0
        var number = ""
        for ch in iso.dropFirst(2) {
            switch ch {
            case "H": total += (Double(number) ?? 0) * 3600; number = ""
            case "M": total += (Double(number) ?? 0) * 60; number = ""
            case "S": total += Double(number) ?? 0; number = ""
            default: number.append(ch)
            }
        }
        return total
    }
}
