import EmotionCore
import EmotionStreams
import Foundation
import Testing

@Suite("stream protocols as values")
struct StreamProtocolTests {
    func message(_ kind: UInt8, _ payload: [UInt8]) -> Result<AudioSocket.Message, AudioSocket.Problem> {
        payload.withUnsafeBytes { AudioSocket.message(kind: kind, payload: $0) }
    }

    @Test("AudioSocket kinds: UUID, DTMF, every slin rate, hangup, error; bad lengths and kinds refused")
    func audioSocketKinds() throws {
        let uuid = UUID()
        #expect(try message(0x01, withUnsafeBytes(of: uuid.uuid) { Array($0) }).get() == .uuid(uuid))
        #expect((try? message(0x01, [1, 2, 3]).get()) == nil)
        #expect(try message(0x03, Array("#".utf8)).get() == .dtmf("#"))
        #expect((try? message(0x03, Array("x".utf8)).get()) == nil)
        let rates: [UInt8: Int] = [
            0x10: 8000, 0x11: 12_000, 0x12: 16_000, 0x13: 24_000, 0x14: 32_000, 0x15: 44_100, 0x16: 48_000,
            0x17: 96_000, 0x18: 192_000,
        ]
        for (kind, rate) in rates { #expect(try message(kind, [0, 0, 0, 0]).get() == .audio(sampleRate: rate)) }
        #expect((try? message(0x10, [0, 0, 0]).get()) == nil)
        #expect((try? message(0x10, []).get()) == nil)
        #expect(try message(0x00, []).get() == .hangup)
        #expect(try message(0xff, [0x04]).get() == .error(code: 4))
        #expect((try? message(0x42, []).get()) == nil)
    }

    @Test("the splitter: stereo PCMU de-interleaved, L16 little-endian to RTP's big-endian, 16 kHz resampled to 8 kHz")
    func splitter() throws {
        let pcmu = try StreamAudioSplitter(format: StreamAudioFormat(encoding: .pcmu, sampleRate: 8000, channels: 2))
        var out: [Int: [UInt8]] = [:]
        let ok = [1, 2, 3, 4, 5, 6].map(UInt8.init).withUnsafeBytes { bytes in
            pcmu.split(bytes) { channel, b, samples in
                out[channel] = Array(b)
                #expect(samples == 3)
            }
        }
        #expect(ok && out[0] == [1, 3, 5] && out[1] == [2, 4, 6])
        #expect([1, 2, 3].map(UInt8.init).withUnsafeBytes { pcmu.split($0) { _, _, _ in } } == false)

        let l16 = try StreamAudioSplitter(
            format: StreamAudioFormat(encoding: .l16LittleEndian, sampleRate: 8000, channels: 1))
        var be: [UInt8] = []
        _ = [0x34, 0x12, 0xff, 0x7f].map(UInt8.init).withUnsafeBytes { l16.split($0) { _, b, _ in be = Array(b) } }
        #expect(be == [0x12, 0x34, 0x7f, 0xff])

        let wide = try StreamAudioSplitter(
            format: StreamAudioFormat(encoding: .l16LittleEndian, sampleRate: 16_000, channels: 1))
        var total = 0
        let second = [UInt8](repeating: 0, count: 32_000)  // 1 s at 16 kHz
        for _ in 0..<3 { _ = second.withUnsafeBytes { wide.split($0) { _, _, n in total += n } } }
        // 3 s in: 24,000 samples at 8 kHz, less the resampler's delay (about 80 ms at medium quality).
        #expect(total > 23_200 && total <= 24_000, "\(total)")
        #expect(throws: PCMResampler.SetupError.self) {
            try StreamAudioSplitter(format: StreamAudioFormat(encoding: .pcmu, sampleRate: 16_000, channels: 1))
        }
    }

    @Test("fork metadata: jambonz's names, the query over the metadata, stereo roles, bad rates named")
    func forkMetadata() throws {
        let jambonz = try ForkMetadata.parse(
            text: #"{"callSid":"jb-1","sampleRate":16000,"mixType":"stereo","from":"+1555"}"#, query: [:]
        ).get()
        #expect(jambonz.callID == "jb-1" && jambonz.sampleRate == 16_000 && jambonz.roles == ["customer", "agent"])
        let fork = try ForkMetadata.parse(
            text: #"{"call_id":"fs-1","agent_id":"a-7"}"#, query: ["rate": "8k", "role": "agent"]
        ).get()
        #expect(fork.callID == "fs-1" && fork.sampleRate == 8000 && fork.roles == ["agent"] && fork.agentID == "a-7")
        #expect(try ForkMetadata.parse(text: nil, query: ["mix": "mixed"]).get().roles == ["mixed"])
        #expect((try? ForkMetadata.parse(text: nil, query: ["rate": "11025"]).get()) == nil)
        #expect((try? ForkMetadata.parse(text: "not json", query: [:]).get()) == nil)
        #expect((try? ForkMetadata.parse(text: nil, query: ["mix": "stereo", "roles": "one"]).get()) == nil)
    }

    @Test("Twilio messages: connected, start, media, stop; bad base64 and a missing body are problems")
    func twilio() throws {
        #expect(
            try TwilioMediaStream.parse(#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).get()
                == .connected)
        let start = try TwilioMediaStream.parse(
            #"{"event":"start","sequenceNumber":"1","start":{"streamSid":"MZ1","callSid":"CA1","tracks":["inbound","outbound"],"customParameters":{"a":"b"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"}"#
        ).get()
        guard case .start(let s) = start else { Issue.record("not a start"); return }
        #expect(s.streamSid == "MZ1" && s.tracks == ["inbound", "outbound"] && s.customParameters == ["a": "b"])
        #expect(
            try TwilioMediaStream.parse(#"{"event":"media","media":{"track":"outbound","payload":"AAEC"}}"#).get()
                == .media(track: "outbound", payload: Data([0, 1, 2])))
        #expect((try? TwilioMediaStream.parse(#"{"event":"media","media":{"payload":"@@"}}"#).get()) == nil)
        #expect((try? TwilioMediaStream.parse(#"{"event":"start"}"#).get()) == nil)
        #expect(try TwilioMediaStream.parse(#"{"event":"stop"}"#).get() == .stop)
        // The media fast path reads what the decoder reads: spaces, key order, escapes (left to the decoder).
        #expect(
            try TwilioMediaStream.parse(
                #"{ "media" : { "payload" : "AAEC", "track" : "outbound" }, "event" : "media" }"#
            )
            .get() == .media(track: "outbound", payload: Data([0, 1, 2])))
        #expect(
            try TwilioMediaStream.parse(#"{"event":"media","media":{"track":"in\u0062ound","payload":"AAEC"}}"#).get()
                == .media(track: "inbound", payload: Data([0, 1, 2])))
        #expect((try? TwilioMediaStream.parse(#"{"event":"media"}"#).get()) == nil)
        #expect(try TwilioMediaStream.parse(#"{"event":"dtmf","dtmf":{"digit":"1"}}"#).get() == .other("dtmf"))
    }

    @Test("an AudioHook session: open, ping, close in order; a seq gap disconnects; a probe has no legs")
    func audioHookSession() {
        let id = "30b0e395-84d3-4570-ac13-9a62d8f514c0"
        func msg(_ type: String, _ seq: Int, _ params: String = "{}") -> String {
            #"{"version":"2","type":"\#(type)","seq":\#(seq),"serverseq":0,"id":"\#(id)","position":"PT0S","parameters":\#(params)}"#
        }
        let open =
            #"{"organizationId":"o","conversationId":"c","participant":{"id":"p"},"media":[{"type":"audio","format":"PCMU","channels":["external"],"rate":8000},{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000}]}"#
        var session = AudioHookSession(sessionID: id)
        #expect(!session.acceptsAudio)
        let opened = session.receive(msg("open", 1, open))
        guard case .send(let reply)? = opened.first, case .start(let o)? = opened.last else {
            Issue.record("open gave \(opened)")
            return
        }
        #expect(reply.contains(#""type":"opened","seq":1,"clientseq":1"#))
        #expect(o.media?.channels == ["external", "internal"] && !o.isProbe && session.acceptsAudio)
        #expect(
            session.receive(msg("ping", 2)).first
                == .send(#"{"version":"2","type":"pong","seq":2,"clientseq":2,"id":"\#(id)","parameters":{}}"#))
        #expect(session.receive(msg("close", 3, #"{"reason":"end"}"#)) == [.close(reason: "end")])
        #expect(session.closed().contains(#""type":"closed","seq":3,"clientseq":3"#))

        var gap = AudioHookSession(sessionID: id)
        _ = gap.receive(msg("open", 1, open))
        let broken = gap.receive(msg("ping", 3))
        #expect(broken.count == 2 && broken.last == .fail("Invalid seq value (expected 2, got 3)"))
        #expect(gap.receive(msg("close", 4, #"{"reason":"disconnect"}"#)).last == .close(reason: "disconnect"))

        var probe = AudioHookSession(sessionID: id)
        let probeOpen = open.replacingOccurrences(
            of: #""conversationId":"c""#, with: #""conversationId":"00000000-0000-0000-0000-000000000000""#)
        guard case .start(let p)? = probe.receive(msg("open", 1, probeOpen)).last else { Issue.record("probe"); return }
        #expect(p.isProbe)
        var other = AudioHookSession(sessionID: id)
        #expect(
            other.receive(
                msg(
                    "open", 1,
                    #"{"organizationId":"o","conversationId":"c","media":[{"type":"audio","format":"L16","channels":["external"],"rate":16000}]}"#
                )
            ).count == 2)
        #expect(other.state == .disconnecting)
    }
}
