import Crypto
import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionTapServer
import EmotionTestSupport
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
                body: #"{"call_id":"as-call","role":"agent","agent_id":"agent-7","audiosocket_uuid":"\#(uuid.uuidString)"}"#)
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
            let end = try #require(receiver.ended(legID))
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
            #expect(receiver.wait(seconds: 10) { $0.contains(where: \.isLegEnd) })
            let starts = receiver.starts(stream: "audiosocket")
            #expect(starts.count == 1)
            let leg = try #require(starts.first?.leg)
            #expect(leg.callID == uuid.uuidString.lowercased() && leg.role == "customer")
            #expect(receiver.ended(leg.legID)?.reason == "closed")
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
            // Without the token: the socket is closed with 1008 (policy violation) and the reason.
            let refused = try await onThread { () -> [UInt8]? in
                let ws = try WebSocketTestClient(port: port, path: "/v1/stream/twilio")
                return ws.receive(timeout: 5).flatMap { $0.opcode == 8 ? $0.payload : nil }
            }
            #expect(refused.map { Array($0.prefix(2)) } == [0x03, 0xf0])
            #expect(refused.map { String(decoding: $0.dropFirst(2), as: UTF8.self) }?.contains("token") == true)
            try await onThread {
                let ws = try WebSocketTestClient(port: port, path: "/v1/stream/twilio?token=tw-token")
                try ws.send(text: #"{"event":"connected","protocol":"Call","version":"1.0.0"}"#)
                try ws.send(text: Self.twilioStart(streamSid: "MZ1", tracks: ["inbound", "outbound"]))
                var seq = 2
                for start in stride(from: 0, to: ulaw.count - 160, by: 160) {
                    for track in ["inbound", "outbound"] {
                        try ws.send(text: Self.twilioMedia("MZ1", track: track, seq: seq, chunk: ulaw[start..<(start + 160)]))
                        seq += 1
                    }
                }
                try ws.send(text: #"{"event":"media","sequenceNumber":"9","media":{"track":"inbound","payload":"***"}}"#)
                try ws.send(text: #"{"event":"stop","sequenceNumber":"\#(seq)","stop":{"accountSid":"AC0","callSid":"CA42"}}"#)
                _ = ws.connection.closedByPeer(within: 5)
            }
            #expect(receiver.wait(seconds: 10) { $0.filter(\.isLegEnd).count == 2 })
            let starts = receiver.starts(stream: "twilio")
            #expect(Set(starts.compactMap { $0.leg?.role }) == ["customer", "agent"])
            for start in starts {
                #expect(start.leg?.callID == "tw-call" && start.leg?.agentID == "agent-9")
                #expect(start.legStart?.stream?.id == "MZ1" && start.legStart?.codec == .pcmu)
                let end = try #require(receiver.ended(start.legID ?? ""))
                #expect(end.reason == "stop")
                #expect(abs(end.summary.mediaSeconds - Double(ulaw.count) / 8000) < 0.3)
                #expect(receiver.legEvents(start.legID ?? "").filter(\.isEmotion).count >= 4)
            }
            // The malformed message is counted on the connection's legs.
            #expect(starts.compactMap { receiver.ended($0.legID ?? "")?.rtp.malformed }.allSatisfy { $0 == 1 })
        }
    }
}
