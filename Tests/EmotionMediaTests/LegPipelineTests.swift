import EmotionCore
@testable import EmotionMedia
import EmotionTestSupport
import Foundation
import Testing

/// The per-leg media path fed packet by packet, without sockets.
@Suite("leg pipeline")
struct LegPipelineTests {
    final class Outputs: @unchecked Sendable {
        // Touched from the test's thread only.
        var items: [LegOutput] = []
        var windows: Int {
            items.filter {
                if case .window = $0 { return true }; return false
            }.count
        }
    }

    func makePipeline(codec: VoiceCodec? = nil) throws -> (LegPipeline, Outputs) {
        let outputs = Outputs()
        let pipeline = try LegPipeline(
            identity: LegIdentity(callID: "c", legID: "l", role: "customer"),
            payloadTypes: PayloadTypes(requestedCodec: codec),
            model: try EmotionModel.builtIn(), policy: LegPolicy()
        ) { outputs.items.append($0) }
        return (pipeline, outputs)
    }

    /// 20 ms mu-law packets of the angry fixture.
    func payloads() throws -> [[UInt8]] {
        let file = try WAVFile(contentsOf: Fixtures.url("crema-1009_DFA_ANG_XX.wav"))
        return stride(from: 0, to: file.data.count - 160, by: 160).map { Array(file.data[$0..<$0 + 160]) }
    }

    func feed(_ p: LegPipeline, pt: UInt8, seq: UInt16, ts: UInt32, ssrc: UInt32 = 7, _ payload: [UInt8], at t: Double)
    {
        payload.withUnsafeBytes { bytes in
            p.handle(
                RTPPacket(
                    sequenceNumber: seq, timestamp: ts, ssrc: ssrc, payloadType: pt, marker: false, payload: bytes,
                    arrival: t))
        }
    }

    @Test("comfort noise, telephone events, unknown payload types and garbage are counted and ignored; audio goes on")
    func ignoredPackets() throws {
        let (p, out) = try makePipeline()
        let audio = try payloads()
        var seq: UInt16 = 65500, ts: UInt32 = 4_294_960_000, t = 0.0
        for (i, payload) in audio.enumerated() {
            feed(p, pt: 0, seq: seq, ts: ts, payload, at: t)
            // DTMF shares the clock.
            if i % 10 == 3 { feed(p, pt: 101, seq: seq, ts: ts, [0x01, 0x0a, 0x00, 0xa0], at: t) }
            if i % 17 == 5 { feed(p, pt: 13, seq: seq, ts: ts, [0x40], at: t) }  // comfort noise
            if i % 23 == 7 { feed(p, pt: 34, seq: seq, ts: ts, [1, 2, 3], at: t) }  // H.263: not ours
            if i % 29 == 9 { feed(p, pt: 0, seq: seq &+ 1, ts: ts &+ 160, [], at: t) }  // empty payload
            seq &+= 1; ts &+= 160; t += 0.02
        }
        p.finish()
        #expect(p.counters.telephoneEvents > 0 && p.counters.comfortNoise > 0 && p.counters.unknownPayloadType > 0)
        #expect(p.counters.undecodable > 0)
        #expect(p.statistics.lost == 0, "sequence numbers wrapped at 65535 without a loss")
        #expect(abs(p.mediaSeconds - Double(audio.count) * 0.02) < 0.001)
        #expect(out.windows >= 1)
        if case .started(let codec, let pt, _, _) = out.items.first {
            #expect(codec == .pcmu && pt == 0)
        } else {
            Issue.record("no start")
        }
    }

    @Test("an SSRC switch (re-INVITE), a timestamp jump and DTX silence resynchronise without inventing audio")
    func discontinuities() throws {
        let (p, _) = try makePipeline(codec: .pcmu)
        let audio = try payloads()
        var t = 0.0
        for i in 0..<40 { feed(p, pt: 0, seq: UInt16(i), ts: UInt32(i * 160), audio[i], at: t); t += 0.02 }
        // DTX: contiguous sequence numbers, 1 s of timestamps skipped -> 1 s of silence.
        for i in 40..<60 { feed(p, pt: 0, seq: UInt16(i), ts: UInt32(i * 160 + 8000), audio[i], at: t); t += 0.02 }
        #expect(p.counters.silenceInsertedMilliseconds == 1000)
        // A new SSRC with unrelated numbering.
        for i in 60..<80 {
            feed(p, pt: 0, seq: UInt16(30000 + i), ts: UInt32(9_000_000 + i * 160), ssrc: 99, audio[i], at: t);
            t += 0.02
        }
        #expect(p.statistics.ssrcChanges == 1)
        // A timestamp jump of an hour: resync, nothing inserted.
        let before = p.mediaSeconds
        feed(p, pt: 0, seq: 30080, ts: UInt32(9_000_000 + 80 * 160 + 8000 * 3600), ssrc: 99, audio[80], at: t)
        #expect(p.counters.resyncs >= 2)
        #expect(abs(p.mediaSeconds - before - 0.02) < 1e-9)
        #expect(p.statistics.lost == 0)
    }

    @Test("lost packets are concealed with spandsp's PLC, duplicates dropped, late packets counted")
    func lossAndDuplicates() throws {
        let (p, _) = try makePipeline(codec: .pcmu)
        let audio = try payloads()
        var t = 0.0
        for i in 0..<60 where i % 10 != 5 {
            feed(p, pt: 0, seq: UInt16(i), ts: UInt32(i * 160), audio[i], at: t)
            if i == 20 { feed(p, pt: 0, seq: UInt16(i), ts: UInt32(i * 160), audio[i], at: t) }  // duplicate
            t += 0.02
        }
        feed(p, pt: 0, seq: 15, ts: 15 * 160, audio[15], at: t)  // far too late to play
        // Six packets went missing (5, 15, ... 55) and were concealed; 15 turned up later, so RFC 3550 counts 5 lost.
        #expect(p.counters.concealedMilliseconds == 6 * 20)
        #expect(p.statistics.lost == 5)
        #expect(p.statistics.duplicates == 1)
        #expect(p.counters.late == 1)
        #expect(abs(p.mediaSeconds - 1.2) < 1e-9, "60 packets' worth of audio, 6 of them concealed")
    }

    @Test("Opus packets with invalid TOC bytes are counted, not decoded")
    func opusGarbage() throws {
        let (p, out) = try makePipeline(codec: .opus)
        let encoder = try OpusPayloadEncoder(sampleRate: 8000, frameMilliseconds: 20, bitrate: 12000)
        let tone = (0..<160).map { Int16(8000 * sin(Double($0) * 0.2)) }
        var t = 0.0
        for i in 0..<50 {
            let packet = try tone.withUnsafeBufferPointer { Array(try encoder.encode($0)) }
            feed(p, pt: 111, seq: UInt16(i), ts: UInt32(i * 960), packet, at: t)
            // Code 3 with a bad frame count.
            if i % 7 == 0 { feed(p, pt: 111, seq: UInt16(i), ts: UInt32(i * 960), [0xff, 0xff, 0xff], at: t) }
            t += 0.02
        }
        #expect(p.counters.undecodable > 0)
        #expect(abs(p.mediaSeconds - 1.0) < 1e-9)
        if case .started(let codec, let pt, _, _) = out.items.first {
            #expect(codec == .opus && pt == 111)
        } else {
            Issue.record("no start")
        }
    }
}

@Suite("source policy")
struct SourcePolicyTests {
    func pipeline(_ policy: SourcePolicy) throws -> LegPipeline {
        try LegPipeline(
            identity: LegIdentity(callID: "c", legID: "l", role: "customer"),
            payloadTypes: PayloadTypes(requestedCodec: .pcmu), sourcePolicy: policy,
            model: try EmotionModel.builtIn(), policy: LegPolicy()
        ) { _ in }
    }

    func send(_ p: LegPipeline, seq: UInt16, from ip: UInt32, port: UInt16) {
        let payload = [UInt8](repeating: 0xff, count: 160)
        payload.withUnsafeBytes {
            p.handle(
                RTPPacket(
                    sequenceNumber: seq, timestamp: UInt32(seq) * 160, ssrc: 1, payloadType: 0, marker: false,
                    payload: $0, arrival: Double(seq) * 0.02, source: SourceAddress(ipv4: ip, port: port)))
        }
    }

    @Test("a leg locks to its first sender; a stray sender is dropped and counted")
    func lock() throws {
        let p = try pipeline(SourcePolicy())
        for i in 0..<10 { send(p, seq: UInt16(i), from: 0x0a00_0001, port: 4000) }
        for i in 10..<15 { send(p, seq: UInt16(i), from: 0x0a00_0099, port: 4000) }  // another host
        for i in 15..<18 { send(p, seq: UInt16(i), from: 0x0a00_0001, port: 4002) }  // same host, other port
        #expect(p.counters.wrongSource == 8)
        #expect(p.statistics.received == 10)
        let open = try pipeline(SourcePolicy(lockToFirstSource: false))
        for i in 0..<4 { send(open, seq: UInt16(i), from: 0x0a00_0001 + UInt32(i), port: 4000) }
        #expect(open.counters.wrongSource == 0 && open.statistics.received == 4)
    }

    @Test("an allow-list of CIDRs drops everything else")
    func allowList() throws {
        let nets = try #require(["10.20.0.0/16", "192.0.2.7"].map { IPv4Network($0) } as? [IPv4Network])
        let p = try pipeline(SourcePolicy(allowed: nets, lockToFirstSource: false))
        send(p, seq: 0, from: 0x0a14_0305, port: 1)  // 10.20.3.5: allowed
        send(p, seq: 1, from: 0x0a15_0305, port: 1)  // 10.21.3.5: not
        send(p, seq: 2, from: 0xc000_0207, port: 1)  // 192.0.2.7: allowed
        send(p, seq: 3, from: 0xc000_0208, port: 1)  // 192.0.2.8: not
        #expect(p.counters.sourceNotAllowed == 2)
        #expect(p.statistics.received == 2)
        #expect(
            IPv4Network("300.1.1.1/8") == nil && IPv4Network("10.0.0.0/33") == nil && IPv4Network("10.0.0/8") == nil)
        #expect(IPv4Network("10.1.2.3/8")?.description == "10.0.0.0/8")
    }
}
