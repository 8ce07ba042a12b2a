import CLinux
import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionTestSupport
@testable import EmotionTraffic
import EmotionUDP
import Foundation
import Testing

@Suite("traffic")
struct TrafficTests {
    @Test("the Gilbert loss model keeps the long-run loss and makes bursts of the asked length", arguments: [1.0, 3.0])
    func gilbert(burst: Double) {
        var loss = Impairments.GilbertLoss(loss: 0.1, burst: burst)
        var rng = SplitMix64(seed: 5)
        var lost = 0, bursts = 0, previous = false
        let n = 200_000
        for _ in 0..<n {
            let drop = loss.drops(&rng)
            if drop { lost += 1 }
            if drop, !previous { bursts += 1 }
            previous = drop
        }
        #expect(abs(Double(lost) / Double(n) - 0.1) < 0.01)
        #expect(abs(Double(lost) / Double(bursts) - burst) < 0.15 * burst)
    }

    @Test("hostile packets: the malformed kinds fail the receiver's header check, the well-formed ones parse")
    func hostileShapes() {
        var rng = SplitMix64(seed: 9)
        var bytes = [UInt8](repeating: 0, count: HostilePacket.hugeSize)
        for kind in HostilePacket.allCases {
            let n = kind.write(into: &bytes, at: 0, seq: 100, timestamp: 16000, ssrc: 42, rng: &rng)
            let parsed = bytes.withUnsafeBytes {
                RTPPacket(datagram: UnsafeRawBufferPointer(rebasing: $0[0..<n]), arrival: 0)
            }
            switch kind {
            case .truncatedHeader, .badVersion, .paddingOverrun, .extensionOverrun, .csrcOverrun, .hugeDatagram:
                #expect(parsed == nil, "\(kind) parsed")
            case .unknownPayloadType:
                #expect(parsed?.payloadType == 77 && parsed?.sequenceNumber == 100)
            case .invalidOpusTOC:
                #expect(parsed?.payloadType == 111 && parsed?.payload.count == 2)
            case .randomBytes:
                break  // random: may or may not look like RTP
            }
        }
    }

    @Test("payload frames: 20 ms of G.711 is 160 bytes on an 8 kHz clock, Opus runs on 48 kHz")
    func frames() throws {
        let audio = try Fixtures.audio("crema-1011_IEO_NEU_XX.wav")
        let g711 = try PayloadFrames(audio, codec: .pcmu)
        #expect(g711.payloadType == 0 && g711.timestampStep == 160)
        #expect(g711.payloads.allSatisfy { $0.count == 160 })
        #expect(g711.payloads.count == (audio.samples.count + 159) / 160)
        let opus = try PayloadFrames(audio, codec: .opus, frameMilliseconds: 40, dynamicPayloadType: 100)
        #expect(opus.payloadType == 100 && opus.timestampStep == 1920)
    }

    /// Streams `frames` through a fresh leg pipeline; returns the windows' upset levels and the codec seen.
    func analysed(_ frames: PayloadFrames) throws -> (upset: [Float], codec: VoiceCodec?, seconds: Double) {
        final class Seen: @unchecked Sendable {
            // Touched from the test's thread only.
            var upset: [Float] = []
            var codec: VoiceCodec?
        }
        let seen = Seen()
        var dynamic: [UInt8: VoiceCodec] = [:]
        if frames.codec.staticPayloadType == nil { dynamic[frames.payloadType] = frames.codec }
        let pipeline = try LegPipeline(
            identity: LegIdentity(callID: "c", legID: "l", role: "customer"),
            payloadTypes: PayloadTypes(dynamicCodecs: dynamic), model: try EmotionModel.builtIn(), policy: LegPolicy()
        ) { output in
            switch output {
            case .started(let codec, _, _, _): seen.codec = codec
            case .window(_, let scores, _): if let scores { seen.upset.append(scores.upset) }
            default: break
            }
        }
        for (i, payload) in frames.payloads.enumerated() {
            payload.withUnsafeBytes { bytes in
                pipeline.handle(
                    RTPPacket(
                        sequenceNumber: UInt16(i), timestamp: UInt32(i) &* frames.timestampStep, ssrc: 9,
                        payloadType: frames.payloadType, marker: false, payload: bytes, arrival: Double(i) * 0.02))
            }
        }
        pipeline.finish()
        #expect(pipeline.counters.undecodable == 0 && pipeline.counters.unknownPayloadType == 0)
        return (seen.upset, seen.codec, pipeline.mediaSeconds)
    }

    @Test(
        "G.722 and L16 (8 and 16 kHz) reach the 8 kHz core on time and are heard as G.711 is",
        arguments: [VoiceCodec.g722, .l16, .l16Wide])
    func widebandCodecs(codec: VoiceCodec) throws {
        let audio = try Fixtures.audio("crema-1009_DFA_ANG_XX.wav")
        let reference = try analysed(try PayloadFrames(audio, codec: .pcmu))
        let frames = try PayloadFrames(audio, codec: codec, dynamicPayloadType: 98)
        #expect(frames.payloadType == (codec == .g722 ? 9 : 98))
        #expect(frames.timestampStep == (codec == .l16Wide ? 320 : 160))
        #expect(frames.payloads.first?.count == (codec == .g722 ? 160 : codec == .l16 ? 320 : 640))
        let heard = try analysed(frames)
        #expect(heard.codec == codec)
        #expect(abs(heard.seconds - reference.seconds) < 1e-9, "every packet yields its 20 ms at 8 kHz")
        #expect(heard.upset.count == reference.upset.count && !heard.upset.isEmpty)
        for (a, b) in zip(heard.upset, reference.upset) { #expect(abs(a - b) < 0.1, "\(codec): \(a) against \(b)") }
    }
}

@Suite("the load generator's event listener")
struct EventListenerTests {
    static func headline(_ text: String) -> (String, Double)? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { EventListener.emotionHeadline($0, count: bytes.count) }
    }

    @Test("an emotion event's leg and window end are read without the decoder; anything else is left to it")
    func emotionHeadline() throws {
        let leg = LegIdentity(callID: "c-1", legID: "leg-00ab", role: "customer", tags: ["end": "x"])
        let reading = EmotionReading(
            start: 18, end: 21.5, speech: 0.6, upset: 0.94, label: .fear,
            scores: [0.3, 0.05, 0.4, 0.03, 0.01, 0.16, 0.05])
        let emotion = Event(
            sequence: 7, timestamp: "2026-12-02T15:33:12.963Z", leg: leg,
            body: .emotion(EmotionEvent(reading: reading, state: .upset)))
        let read = try #require(Self.headline(emotion.serialized()))
        #expect(read.0 == "leg-00ab" && read.1 == 21.5)
        // The same answer the decoder gives.
        let decoded = try Event(decoding: Data(emotion.serialized().utf8))
        guard case .emotion(let e) = decoded.body else { Issue.record("not an emotion event"); return }
        #expect(e.reading.end == read.1 && decoded.leg?.legID == read.0)

        let heartbeat = Event(
            sequence: 8, timestamp: "2026-12-02T15:33:13.000Z", leg: nil, body: .heartbeat(Heartbeat(legs: 1)))
        #expect(Self.headline(heartbeat.serialized()) == nil)
        #expect(Self.headline(#"{"v":1,"type":"emotion","seq":1"#) == nil)  // cut short
        #expect(Self.headline(#"{"v":1,"type":"emotion","leg_id":"a\"b","end":3}"#) == nil)  // an escape
    }

    @Test(
        "latency from the actual send takes the sender's lag out; a window without a recorded send keeps its due time")
    func latencyFromSend() throws {
        let lags = SendLags(legs: 2, seconds: 10)
        let listener = try EventListener(
            address: try UDPEndpoint(host: "127.0.0.1", port: 0), legIDs: ["leg-a", "leg-b"], sendLags: lags
        ) { leg, _ in Double(leg) * 0.5 }
        defer { listener.stop() }
        // The schedule began 10 s ago: leg a's window ending at 3 s was due 7 s ago, leg b's (offset 0.5 s)
        // ending at 4 s 5.5 s ago. Leg a's packet ending second 3 left 6 s late.
        listener.setStart(Double(DispatchTime.now().uptimeNanoseconds) / 1e9 - 10, legs: 2)
        lags.record(legs: [0], seconds: [3], lag: 6)
        #expect(lags.lag(leg: 0, second: 3) == 6 && lags.lag(leg: 1, second: 4) == nil)
        #expect(lags.lag(leg: 0, second: 10) == nil && lags.lag(leg: 5, second: 1) == nil)  // outside the table
        let sender = try UDPSocket()
        let target = try UDPEndpoint(host: "127.0.0.1", port: listener.port)
        func send(_ legID: String, end: Double) {
            let reading = EmotionReading(
                start: end - 3, end: end, speech: 2, upset: 0.2, label: .neutral,
                scores: [0.1, 0.1, 0.1, 0.1, 0.4, 0.1, 0.1])
            let event = Event(
                sequence: 1, timestamp: "2026-12-07T00:00:00.000Z",
                leg: LegIdentity(callID: "c", legID: legID, role: "customer", tags: [:]),
                body: .emotion(EmotionEvent(reading: reading, state: .calm)))
            _ = sender.send(event.serialized(), to: target)
        }
        func waitFor(_ count: Int) -> EventListener.Summary {
            for _ in 0..<200 where listener.summary().emotion < count { Thread.sleep(forTimeInterval: 0.01) }
            return listener.summary()
        }
        send("leg-a", end: 3)
        var s = waitFor(1)
        #expect(s.emotion == 1)
        #expect(abs(s.p99 - 7) < 0.5, "from the schedule: \(s.p99)")
        #expect(abs(s.p99FromSend - 1) < 0.5, "from the send: \(s.p99FromSend)")
        send("leg-b", end: 4)
        s = waitFor(2)
        #expect(s.emotion == 2)
        #expect(abs(s.p99 - 7) < 0.5 && abs(s.p99FromSend - 5.5) < 0.5, "\(s.p99) \(s.p99FromSend)")
    }

    @Test("an event's arrival is the kernel's stamp on the datagram, not when a busy listener got round to reading it")
    func kernelArrivalStamp() throws {
        let socket = try UDPSocket(bindingTo: try UDPEndpoint(host: "127.0.0.1", port: 0))
        #expect(et_enable_receive_timestamps(socket.fileDescriptor) == 0)
        // The first socket to ask turns stamping on in the kernel a moment later (deferred work).
        Thread.sleep(forTimeInterval: 0.2)
        _ = try UDPSocket().send("x", to: try UDPEndpoint(host: "127.0.0.1", port: socket.localPort))
        Thread.sleep(forTimeInterval: 0.3)  // the reader is late
        var buffer = [UInt8](repeating: 0, count: 16)
        var seconds: Int64 = 0, nanoseconds: Int64 = 0
        let n = buffer.withUnsafeMutableBytes {
            et_recv_stamped(socket.fileDescriptor, $0.baseAddress, $0.count, &seconds, &nanoseconds)
        }
        #expect(n == 1)
        let waited = Date().timeIntervalSince1970 - (Double(seconds) + Double(nanoseconds) / 1e9)
        #expect(waited > 0.25 && waited < 5, "stamped \(waited) s before the read")
    }
}
