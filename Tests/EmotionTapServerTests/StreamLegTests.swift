import EmotionDigest
import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionTapServer
import EmotionTestSupport
import EmotionTraffic
import Foundation
import Testing

/// Runs blocking socket work on a thread of its own (the in-process service needs the async pool).
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }.start()
    }
}

/// Speech from the fixtures (three clips, about 8 s), as the stream protocols carry it.
enum StreamAudio {
    static func pcm(rate: Int) throws -> [Int16] {
        try Fixtures.clips.flatMap { name in
            try AudioInput.load(Fixtures.url(name), sampleRate: rate).samples.map {
                Int16(max(-32768, min(32767, ($0 * 32767).rounded())))
            }
        }
    }

    /// The fixtures are G.711 mu-law WAVs: their data is the PCMU bytes Twilio and AudioHook send.
    static func muLaw() throws -> [UInt8] {
        try Fixtures.clips.flatMap { try WAVFile(contentsOf: Fixtures.url($0)).data }
    }

    static func littleEndian(_ samples: ArraySlice<Int16>) -> [UInt8] {
        samples.flatMap { [UInt8(UInt16(bitPattern: $0) & 0xff), UInt8(UInt16(bitPattern: $0) >> 8)] }
    }
}

extension EventReceiver {
    func legEvents(_ legID: String) -> [Event] { events.filter { $0.legID == legID } }

    func ended(_ legID: String, within seconds: Double = 10) -> LegEnd? {
        _ = wait(seconds: seconds) { $0.contains { $0.legID == legID && $0.isLegEnd } }
        return legEvents(legID).compactMap(\.legEnd).first
    }

    func ended(_ legID: String, within seconds: Double = 10) async -> LegEnd? {
        _ = await wait(seconds: seconds) { $0.contains { $0.legID == legID && $0.isLegEnd } }
        return legEvents(legID).compactMap(\.legEnd).first
    }

    func starts(stream kind: String) -> [Event] {
        events.filter { $0.legStart?.stream?.kind == kind }
    }
}

@Suite("stream legs: AudioSocket and WebSocket protocols, in-process", .serialized)
struct StreamLegTests {
    static func audioSocketFrame(_ kind: UInt8, _ payload: [UInt8]) -> [UInt8] {
        // res_audiosocket: kind, 16-bit big-endian length, payload.
        [kind, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)] + payload
    }

    @Test("AudioSocket: an announced UUID takes its leg; slin16 is resampled; bad frames are counted; hangup ends it")
    func audioSocketAnnounced() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port) { c in
            c.streams.audiosocketListen = "127.0.0.1:0"
            c.streams.maxQueueMilliseconds = 60_000
        }
        let pcm = try StreamAudio.pcm(rate: 16_000)
        let audioSocket = s.service.audioSocket
        try await s.run { client in
            let port = try #require(audioSocket?.port)
            let uuid = UUID()
            let announced = try await client.request(
                "POST", "/v1/legs",
                body:
                    #"{"call_id":"as-call","role":"agent","agent_id":"agent-7","audiosocket_uuid":"\#(uuid.uuidString)"}"#
            )
            #expect(announced.status == 201)
            let legID = try #require(announced.json["leg_id"] as? String)
            #expect((announced.json["audiosocket"] as? [String: Any])?["port"] as? Int == port)
            let waiting = try await client.request("GET", "/v1/legs/\(legID)")
            #expect(waiting.json["state"] as? String == "waiting")
            // The same UUID twice is refused.
            let twice = try await client.request(
                "POST", "/v1/legs", body: #"{"call_id":"x","role":"agent","audiosocket_uuid":"\#(uuid.uuidString)"}"#)
            #expect(twice.status == 400)

            let closed = try await onThread { () -> Bool in
                let c = try TCPConnection(port: port)
                try c.send(Self.audioSocketFrame(0x01, withUnsafeBytes(of: uuid.uuid) { Array($0) }))
                try c.send(Self.audioSocketFrame(0x10, [1, 2, 3]))  // half a sample: malformed
                try c.send(Self.audioSocketFrame(0x42, [0]))  // no such kind: malformed
                try c.send(Self.audioSocketFrame(0x03, Array("5".utf8)))  // DTMF: ignored
                // slin16 (kind 0x12), 20 ms frames of 640 bytes, little-endian.
                for start in stride(from: 0, to: pcm.count - 320, by: 320) {
                    try c.send(Self.audioSocketFrame(0x12, StreamAudio.littleEndian(pcm[start..<(start + 320)])))
                }
                try c.send(Self.audioSocketFrame(0x00, []))
                return c.closedByPeer(within: 5)
            }
            #expect(closed, "the service closes the socket after hangup")
            let end = try #require(await receiver.ended(legID))
            #expect(end.reason == "hangup")
            #expect(end.rtp.malformed == 2)
            #expect(end.rtp.queueOverflow == 0)
            let seconds = Double(pcm.count) / 16_000
            #expect(abs(end.summary.mediaSeconds - seconds) < 0.3, "\(end.summary.mediaSeconds) s of \(seconds) s")
            let events = receiver.legEvents(legID)
            let start = try #require(events.first?.legStart)
            #expect(start.stream == StreamOrigin(kind: "audiosocket", id: uuid.uuidString.lowercased()))
            #expect(start.codec == .l16 && start.port == port)
            #expect(events.first?.leg?.role == "agent" && events.first?.leg?.callID == "as-call")
            #expect(events.first?.leg?.agentID == "agent-7")
            #expect(events.filter(\.isEmotion).count >= 4)
        }
    }

    @Test("AudioSocket: an unannounced UUID gets a customer leg; no UUID in 5 s, or audio first, is dropped")
    func audioSocketUnannounced() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port) { c in
            c.streams.audiosocketListen = "127.0.0.1:0"
            c.streams.maxQueueMilliseconds = 60_000
        }
        let pcm = try StreamAudio.pcm(rate: 8000)
        let audioSocket = s.service.audioSocket
        try await s.run { client in
            let port = try #require(audioSocket?.port)
            let uuid = UUID()
            let (silent, audioFirst) = try await onThread { () -> (Bool, Bool) in
                let quiet = try TCPConnection(port: port)
                let early = try TCPConnection(port: port)
                try early.send(Self.audioSocketFrame(0x10, [0, 0]))
                let c = try TCPConnection(port: port)
                try c.send(Self.audioSocketFrame(0x01, withUnsafeBytes(of: uuid.uuid) { Array($0) }))
                for start in stride(from: 0, to: pcm.count - 160, by: 160) {
                    try c.send(Self.audioSocketFrame(0x10, StreamAudio.littleEndian(pcm[start..<(start + 160)])))
                }
                c.abort()  // Asterisk's hangup: the socket closes, no 0x00.
                return (quiet.closedByPeer(within: 7), early.closedByPeer(within: 1))
            }
            #expect(silent, "a connection without a UUID is closed after 5 s")
            #expect(audioFirst, "audio before the UUID closes the connection")
            #expect(await receiver.wait(seconds: 10) { $0.contains(where: \.isLegEnd) })
            let starts = receiver.starts(stream: "audiosocket")
            #expect(starts.count == 1)
            let leg = try #require(starts.first?.leg)
            #expect(leg.callID == uuid.uuidString.lowercased() && leg.role == "customer")
            #expect(await receiver.ended(leg.legID)?.reason == "closed")
            #expect(try await client.request("GET", "/metrics").body.contains(#"stream="audiosocket""#))
        }
    }

    static func twilioStart(streamSid: String, tracks: [String]) -> String {
        """
        {"event":"start","sequenceNumber":"1","start":{"accountSid":"AC0","streamSid":"\(streamSid)",\
        "callSid":"CA42","tracks":[\(tracks.map { "\"\($0)\"" }.joined(separator: ","))],\
        "customParameters":{"call_id":"tw-call","agent_id":"agent-9"},\
        "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"\(streamSid)"}
        """
    }

    static func twilioMedia(_ streamSid: String, track: String, seq: Int, chunk: ArraySlice<UInt8>) -> String {
        """
        {"event":"media","sequenceNumber":"\(seq)","media":{"track":"\(track)","chunk":"\(seq)",\
        "timestamp":"\(seq * 20)","payload":"\(Data(chunk).base64EncodedString())"},"streamSid":"\(streamSid)"}
        """
    }

    @Test("Twilio media streams: a leg per track, the token in the URL, a bad message counted, stop ends both")
    func twilio() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port, token: "tw-token") { c in
            c.streams.maxQueueMilliseconds = 60_000
        }
        let ulaw = try StreamAudio.muLaw()
        try await s.run { client in
            let port = try #require(Int(client.baseURL.split(separator: ":").last ?? ""))
            // Without the token (URL or start parameter): closed with 1008 (policy violation) and the reason.
            let refused = try await onThread { () -> [UInt8]? in
                let ws = try WebSocketClient(port: port, path: "/v1/stream/twilio")
                try ws.send(text: Self.twilioStart(streamSid: "MZ0", tracks: ["inbound"]))
                return ws.receive(timeout: 5).flatMap { $0.opcode == 8 ? $0.payload : nil }
            }
            #expect(refused.map { Array($0.prefix(2)) } == [0x03, 0xf0])
            #expect(refused.map { String(decoding: $0.dropFirst(2), as: UTF8.self) }?.contains("token") == true)
            // Twilio drops the URL's query: the token may come as a <Parameter> in `start` instead.
            let viaParameter = try await onThread { () -> Bool in
                let ws = try WebSocketClient(port: port, path: "/v1/stream/twilio")
                try ws.send(
                    text: Self.twilioStart(streamSid: "MZ2", tracks: ["inbound"]).replacingOccurrences(
                        of: #""call_id":"tw-call""#, with: #""call_id":"tw-param","token":"tw-token""#))
                try ws.send(text: #"{"event":"stop","sequenceNumber":"2","stop":{}}"#)
                return ws.receive(timeout: 5)?.opcode == 8
            }
            #expect(viaParameter)
            #expect(await receiver.wait(seconds: 5) { $0.contains { $0.leg?.callID == "tw-param" && $0.isLegEnd } })
            try await onThread {
                let ws = try WebSocketClient(port: port, path: "/v1/stream/twilio?token=tw-token")
                try ws.send(text: #"{"event":"connected","protocol":"Call","version":"1.0.0"}"#)
                try ws.send(text: Self.twilioStart(streamSid: "MZ1", tracks: ["inbound", "outbound"]))
                var seq = 2
                for start in stride(from: 0, to: ulaw.count - 160, by: 160) {
                    for track in ["inbound", "outbound"] {
                        try ws.send(
                            text: Self.twilioMedia("MZ1", track: track, seq: seq, chunk: ulaw[start..<(start + 160)]))
                        seq += 1
                    }
                }
                try ws.send(
                    text: #"{"event":"media","sequenceNumber":"9","media":{"track":"inbound","payload":"***"}}"#)
                try ws.send(
                    text: #"{"event":"stop","sequenceNumber":"\#(seq)","stop":{"accountSid":"AC0","callSid":"CA42"}}"#)
                _ = ws.connection.closedByPeer(within: 5)
            }
            #expect(
                await receiver.wait(seconds: 10) { $0.filter { $0.isLegEnd && $0.leg?.callID == "tw-call" }.count == 2 }
            )
            let starts = receiver.starts(stream: "twilio").filter { $0.leg?.callID == "tw-call" }
            #expect(Set(starts.compactMap { $0.leg?.role }) == ["customer", "agent"])
            for start in starts {
                #expect(start.leg?.callID == "tw-call" && start.leg?.agentID == "agent-9")
                #expect(start.legStart?.stream?.id == "MZ1" && start.legStart?.codec == .pcmu)
                let end = try #require(await receiver.ended(start.legID ?? ""))
                #expect(end.reason == "stop")
                #expect(abs(end.summary.mediaSeconds - Double(ulaw.count) / 8000) < 0.3)
                #expect(receiver.legEvents(start.legID ?? "").filter(\.isEmotion).count >= 4)
            }
            // The malformed message is counted on the connection's legs.
            #expect(starts.compactMap { receiver.ended($0.legID ?? "")?.rtp.malformed }.allSatisfy { $0 == 1 })
        }
    }

    @Test("mod_audio_fork: stereo 16 kHz L16 splits into customer and agent, results come back as json messages")
    func audioFork() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port) { c in c.streams.maxQueueMilliseconds = 60_000 }
        let left = try StreamAudio.pcm(rate: 16_000)
        let right = Array(left.reversed())
        try await s.run { client in
            let port = try #require(Int(client.baseURL.split(separator: ":").last ?? ""))
            let (results, subprotocol) = try await onThread { () -> ([String], String?) in
                let ws = try WebSocketClient(
                    port: port, path: "/v1/stream/audio-fork?rate=16000&mix=stereo",
                    headers: ["Sec-WebSocket-Protocol": "audio.drachtio.org"])
                // mod_audio_fork: the metadata first (a text frame), then interleaved L16 frames.
                try ws.send(text: #"{"call_id":"fs-call","agent_id":"agent-3","roles":"customer,agent"}"#)
                for start in stride(from: 0, to: left.count - 1600, by: 1600) {  // 100 ms a frame
                    var frame: [UInt8] = []
                    for i in start..<(start + 1600) {
                        frame += StreamAudio.littleEndian(left[i...i]) + StreamAudio.littleEndian(right[i...i])
                    }
                    try ws.send(binary: frame)
                }
                try ws.send(binary: [1, 2, 3])  // not whole stereo samples: counted, skipped
                let seen = ws.texts(timeout: 3) { $0.contains("\"state\"") || $0.contains("emotion") }
                try ws.close()
                _ = ws.connection.closedByPeer(within: 5)
                return (seen, ws.responseHeaders["sec-websocket-protocol"])
            }
            #expect(subprotocol == "audio.drachtio.org")
            #expect(await receiver.wait(seconds: 10) { $0.filter(\.isLegEnd).count == 2 })
            let starts = receiver.starts(stream: "audio-fork")
            #expect(Set(starts.compactMap { $0.leg?.role }) == ["customer", "agent"])
            for start in starts {
                #expect(start.leg?.callID == "fs-call" && start.leg?.agentID == "agent-3")
                let end = try #require(await receiver.ended(start.legID ?? ""))
                #expect(end.reason == "closed" && end.rtp.malformed == 1)
                #expect(abs(end.summary.mediaSeconds - Double(left.count) / 16_000) < 0.3)
            }
            // Results on the socket: {"type":"json","data":<the event>}, as mod_audio_fork::json fires them.
            let first = try #require(results.first)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
            #expect(object["type"] as? String == "json")
            #expect((object["data"] as? [String: Any])?["call_id"] as? String == "fs-call")
        }
    }

    @Test("jambonz listen: the subprotocol is echoed, its metadata names the call, mono 8 kHz is one leg")
    func jambonz() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port) { c in c.streams.maxQueueMilliseconds = 60_000 }
        let pcm = try StreamAudio.pcm(rate: 8000)
        try await s.run { client in
            let port = try #require(Int(client.baseURL.split(separator: ":").last ?? ""))
            let subprotocol = try await onThread { () -> String? in
                let ws = try WebSocketClient(
                    port: port, path: "/v1/stream/jambonz", headers: ["Sec-WebSocket-Protocol": "audio.jambonz.org"])
                try ws.send(
                    text:
                        #"{"sampleRate":8000,"mixType":"mono","callSid":"jb-1","from":"+15550100","to":"+15550199","direction":"inbound"}"#
                )
                for start in stride(from: 0, to: pcm.count - 320, by: 320) {
                    try ws.send(binary: StreamAudio.littleEndian(pcm[start..<(start + 320)]))
                }
                try ws.close()
                _ = ws.connection.closedByPeer(within: 5)
                return ws.responseHeaders["sec-websocket-protocol"]
            }
            #expect(subprotocol == "audio.jambonz.org")
            #expect(await receiver.wait(seconds: 10) { $0.contains(where: \.isLegEnd) })
            let start = try #require(receiver.starts(stream: "jambonz").first)
            #expect(start.leg?.callID == "jb-1" && start.leg?.role == "customer")
            #expect(receiver.legEvents(start.legID ?? "").filter(\.isEmotion).count >= 4)
        }
    }

    // Genesys' documentation example: an API key and its client secret.
    static let apiKey = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
    static let clientSecret = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="

    /// The upgrade headers of an AudioHook client, signed as the protocol says (RFC 9421's signature base
    /// over the six components, HMAC-SHA256 with the decoded client secret), built here from the spec.
    static func audioHookHeaders(
        port: Int, path: String, session: String, secret: String = clientSecret,
        created: Int = Int(Date().timeIntervalSince1970)
    ) -> [String: String] {
        let org = "d7934305-0972-4844-938e-9060eef73d05"
        let correlation = UUID().uuidString.lowercased()
        let authority = "127.0.0.1:\(port)"
        let params =
            #"("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key")"#
            + #";keyid="\#(apiKey)";nonce="\#(Data((0..<18).map { _ in UInt8.random(in: 0...255) }).base64EncodedString())";alg="hmac-sha256";created=\#(created);expires=\#(created + 30)"#
        let base = [
            "\"@request-target\": \(path)", "\"@authority\": \(authority)", "\"audiohook-organization-id\": \(org)",
            "\"audiohook-session-id\": \(session)", "\"audiohook-correlation-id\": \(correlation)",
            "\"x-api-key\": \(apiKey)",
            "\"@signature-params\": \(params)",
        ].joined(separator: "\n")
        let mac = Digest.hmacSHA256(key: Data(base64Encoded: secret)!, data: base.utf8)
        return [
            "Host": authority, "Audiohook-Organization-Id": org, "Audiohook-Session-Id": session,
            "Audiohook-Correlation-Id": correlation, "X-API-KEY": apiKey, "User-Agent": "GenesysCloud-AudioHook-Client",
            "Signature-Input": "sig1=\(params)", "Signature": "sig1=:\(Data(mac).base64EncodedString()):",
        ]
    }

    static func audioHookOpen(session: String, conversation: String, seq: Int = 1) -> String {
        """
        {"version":"2","type":"open","seq":\(seq),"serverseq":0,"id":"\(session)","position":"PT0S",\
        "parameters":{"organizationId":"d7934305-0972-4844-938e-9060eef73d05","conversationId":"\(conversation)",\
        "participant":{"id":"883efee8-3d6c-4537-b500-6d7ca4b92fa0","ani":"+1-555-555-1234","aniName":"John Doe",\
        "dnis":"+1-800-555-6789"},"media":[{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000},\
        {"type":"audio","format":"PCMU","channels":["external"],"rate":8000}],"language":"en-US"}}
        """
    }

    static func audioHook(
        _ type: String, session: String, seq: Int, serverSeq: Int, _ parameters: String = "{}"
    ) -> String {
        """
        {"version":"2","type":"\(type)","seq":\(seq),"serverseq":\(serverSeq),"id":"\(session)","position":"PT1.5S",\
        "parameters":\(parameters)}
        """
    }

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    @Test("AudioHook: signed open, opened with the stereo offer, ping/pong, pause, events back, close then closed")
    func audioHook() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port) { c in
            c.streams.maxQueueMilliseconds = 60_000
            c.streams.audiohookKeys = [Self.apiKey: Array(Data(base64Encoded: Self.clientSecret)!)]
        }
        let ulaw = try StreamAudio.muLaw()
        try await s.run { client in
            let port = try #require(Int(client.baseURL.split(separator: ":").last ?? ""))
            let session = UUID().uuidString.lowercased()
            let conversation = UUID().uuidString.lowercased()
            let messages = try await onThread { () -> [String] in
                let path = "/v1/stream/audiohook"
                let ws = try WebSocketClient(
                    port: port, path: path, headers: Self.audioHookHeaders(port: port, path: path, session: session))
                var seen: [String] = []
                try ws.send(text: Self.audioHookOpen(session: session, conversation: conversation))
                seen += ws.texts(timeout: 5) { $0.contains("\"opened\"") }
                try ws.send(text: Self.audioHook("ping", session: session, seq: 2, serverSeq: 1, #"{"rtt":"PT0.01S"}"#))
                seen += ws.texts(timeout: 5) { $0.contains("\"pong\"") }
                // Stereo PCMU, channels interleaved in the offer's order: external (customer), internal (agent).
                var clientSeq = 2
                for start in stride(from: 0, to: ulaw.count - 800, by: 800) {  // 100 ms a frame
                    var frame: [UInt8] = []
                    for i in start..<(start + 800) { frame += [ulaw[i], ulaw[ulaw.count - 1 - i]] }
                    try ws.send(binary: frame)
                    if start == 16_000 {
                        clientSeq += 1
                        try ws.send(text: Self.audioHook("paused", session: session, seq: clientSeq, serverSeq: 2))
                        clientSeq += 1
                        try ws.send(
                            text: Self.audioHook(
                                "resumed", session: session, seq: clientSeq, serverSeq: 2,
                                #"{"start":"PT2S","discarded":"PT0S"}"#))
                    }
                }
                clientSeq += 1
                try ws.send(
                    text: Self.audioHook("close", session: session, seq: clientSeq, serverSeq: 2, #"{"reason":"end"}"#))
                seen += ws.texts(timeout: 10) { $0.contains("\"closed\"") }
                return seen
            }
            let parsed = messages.map(Self.object)
            let opened = try #require(parsed.first { $0["type"] as? String == "opened" })
            #expect(
                opened["seq"] as? Int == 1 && opened["clientseq"] as? Int == 1 && opened["id"] as? String == session)
            let media = (opened["parameters"] as? [String: Any])?["media"] as? [[String: Any]]
            #expect(media?.count == 1 && media?.first?["channels"] as? [String] == ["external", "internal"])
            let pong = try #require(parsed.first { $0["type"] as? String == "pong" })
            #expect(pong["clientseq"] as? Int == 2)
            // Server messages are numbered 1, 2, 3... in the order sent; `closed` is the last.
            #expect(parsed.compactMap { $0["seq"] as? Int } == Array(1...parsed.count))
            #expect(parsed.last?["type"] as? String == "closed")
            struct Entity: Decodable {
                struct Data: Decodable { var type: String }
                var type: String
                var data: Data
            }
            struct EventMessage: Decodable {
                struct Parameters: Decodable { var entities: [Entity] }
                var type: String
                var parameters: Parameters
            }
            let entities = messages.compactMap { try? JSONDecoder().decode(EventMessage.self, from: Data($0.utf8)) }
                .filter { $0.type == "event" }.flatMap(\.parameters.entities)
            #expect(entities.allSatisfy { $0.type == "emotiontap" })
            let types = entities.map(\.data.type)
            #expect(types.contains("emotion") && types.filter { $0 == "leg.end" }.count == 2, "\(types)")

            let starts = receiver.starts(stream: "audiohook")
            #expect(Set(starts.compactMap { $0.leg?.role }) == ["customer", "agent"])
            for start in starts {
                #expect(start.leg?.callID == conversation && start.legStart?.stream?.id == session)
                #expect(await receiver.ended(start.legID ?? "")?.reason == "close")
            }
        }
    }

    @Test(
        "AudioHook: a bad signature is disconnected as unauthorized; a probe opens without legs; a seq gap is an error")
    func audioHookRefusals() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port) { c in
            c.streams.audiohookKeys = [Self.apiKey: Array(Data(base64Encoded: Self.clientSecret)!)]
        }
        try await s.run { client in
            let port = try #require(Int(client.baseURL.split(separator: ":").last ?? ""))
            let path = "/v1/stream/audiohook"
            let (unauthorized, probe, gap) = try await onThread { () -> ([String], [String], [String]) in
                let session = UUID().uuidString.lowercased()
                let forged = try WebSocketClient(
                    port: port, path: path,
                    headers: Self.audioHookHeaders(
                        port: port, path: path, session: session, secret: Data("wrong".utf8).base64EncodedString()))
                try forged.send(text: Self.audioHookOpen(session: session, conversation: UUID().uuidString))
                var a = forged.texts(timeout: 5) { $0.contains("disconnect") }
                try forged.send(
                    text: Self.audioHook("close", session: session, seq: 2, serverSeq: 1, #"{"reason":"disconnect"}"#))
                a += forged.texts(timeout: 5) { $0.contains("closed") }

                let probeSession = UUID().uuidString.lowercased()
                let prober = try WebSocketClient(
                    port: port, path: path,
                    headers: Self.audioHookHeaders(port: port, path: path, session: probeSession))
                try prober.send(
                    text: Self.audioHookOpen(
                        session: probeSession, conversation: "00000000-0000-0000-0000-000000000000"))
                var b = prober.texts(timeout: 5) { $0.contains("opened") }
                try prober.send(
                    text: Self.audioHook("close", session: probeSession, seq: 2, serverSeq: 1, #"{"reason":"end"}"#))
                b += prober.texts(timeout: 5) { $0.contains("closed") }

                let gapSession = UUID().uuidString.lowercased()
                let skipper = try WebSocketClient(
                    port: port, path: path, headers: Self.audioHookHeaders(port: port, path: path, session: gapSession))
                try skipper.send(text: Self.audioHookOpen(session: gapSession, conversation: UUID().uuidString))
                var c = skipper.texts(timeout: 5) { $0.contains("opened") }
                try skipper.send(text: Self.audioHook("ping", session: gapSession, seq: 5, serverSeq: 1))
                c += skipper.texts(timeout: 5) { $0.contains("disconnect") }
                return (a, b, c)
            }
            // A client that never sends `open` is closed after 5 s (Genesys itself waits 5 s for `opened`).
            let silentClosed = try await onThread { () -> Bool in
                let session = UUID().uuidString.lowercased()
                let silent = try WebSocketClient(
                    port: port, path: path, headers: Self.audioHookHeaders(port: port, path: path, session: session))
                return silent.receive(timeout: 8)?.opcode == 8
            }
            #expect(silentClosed)
            let refusal = unauthorized.map(Self.object)
            #expect(refusal.first?["type"] as? String == "disconnect" && refusal.first?["seq"] as? Int == 1)
            #expect((refusal.first?["parameters"] as? [String: Any])?["reason"] as? String == "unauthorized")
            #expect(refusal.last?["type"] as? String == "closed")
            #expect(probe.map(Self.object).map { $0["type"] as? String } == ["opened", "closed"])
            let error = try #require(gap.map(Self.object).last)
            #expect(error["type"] as? String == "disconnect")
            #expect((error["parameters"] as? [String: Any])?["reason"] as? String == "error")
            // Only the gap session made legs (and they end with the error).
            #expect(await receiver.wait(seconds: 5) { $0.filter(\.isLegEnd).count == 2 })
            #expect(Set(receiver.events.compactMap(\.legEnd).map(\.reason)) == ["error"])
            #expect(
                try await client.request("GET", "/metrics").body.contains(
                    #"emotiontap_stream_connections_refused_total{stream="audiohook"} 1"#))
        }
    }

    @Test("a stream client that vanishes: the media timeout ends its legs and the service closes the socket")
    func vanishedClient() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port) { c in c.legTimeoutSeconds = 2 }
        let ulaw = try StreamAudio.muLaw()
        try await s.run { client in
            let port = try #require(Int(client.baseURL.split(separator: ":").last ?? ""))
            let closed = try await onThread { () -> Bool in
                let ws = try WebSocketClient(port: port, path: "/v1/stream/twilio")
                try ws.send(text: Self.twilioStart(streamSid: "MZ-gone", tracks: ["inbound"]))
                for (seq, start) in stride(from: 0, to: 8000, by: 160).enumerated() {
                    try ws.send(
                        text: Self.twilioMedia(
                            "MZ-gone", track: "inbound", seq: seq, chunk: ulaw[start..<(start + 160)]))
                }
                // Then nothing: no stop, no close, the socket left open.
                let deadline = Date().addingTimeInterval(8)
                while Date() < deadline {
                    guard let frame = ws.receive(timeout: deadline.timeIntervalSinceNow) else {
                        return ws.connection.closedByPeer(within: 0.1)
                    }
                    if frame.opcode == 8 { return true }
                }
                return false
            }
            #expect(closed)
            let start = try #require(receiver.starts(stream: "twilio").first)
            #expect(await receiver.ended(start.legID ?? "")?.reason == "timeout")
        }
    }

    @Test("200 concurrent Twilio streams: every one gets its leg, its events and its leg.end")
    func manyStreams() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        // Each client sends its 3 s at full speed, 600 s of audio in all: a debug build takes longer than
        // rtp.max_delay_ms to analyse it, and this test is about every stream's protocol, not shedding.
        let s = try InProcessService(eventPort: receiver.port) { c in
            c.streams.maxQueueMilliseconds = 60_000
            c.maxDelayMilliseconds = 60_000
        }
        let ulaw = Array(try StreamAudio.muLaw().prefix(8000 * 3))  // 3 s each
        let count = 200
        try await s.run { client in
            let port = try #require(Int(client.baseURL.split(separator: ":").last ?? ""))
            let failures = try await withThrowingTaskGroup(of: Bool.self) { group in
                for n in 0..<count {
                    group.addTask {
                        try await onThread { () -> Bool in
                            let ws = try WebSocketClient(
                                port: port, path: "/v1/stream/twilio", handshakeTimeout: 30)
                            let sid = "MZ\(n)"
                            try ws.send(text: Self.twilioStart(streamSid: sid, tracks: ["inbound"]))
                            for (seq, start) in stride(from: 0, to: ulaw.count - 160, by: 160).enumerated() {
                                try ws.send(
                                    text: Self.twilioMedia(
                                        sid, track: "inbound", seq: seq + 2, chunk: ulaw[start..<(start + 160)]))
                            }
                            try ws.send(text: #"{"event":"stop","sequenceNumber":"999","stop":{}}"#)
                            return ws.connection.closedByPeer(within: 20)
                        }
                    }
                }
                var failed = 0
                for try await closed in group where !closed { failed += 1 }
                return failed
            }
            #expect(failures == 0)
            #expect(await receiver.wait(seconds: 30) { $0.filter(\.isLegEnd).count == count })
            let ends = receiver.events.compactMap(\.legEnd)
            #expect(ends.count == count && ends.allSatisfy { $0.reason == "stop" && $0.rtp.queueOverflow == 0 })
            let legsWithEmotion = Set(receiver.events.filter(\.isEmotion).compactMap(\.legID))
            #expect(legsWithEmotion.count == count)
        }
    }
}
