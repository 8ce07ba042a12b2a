import EmotionCore
import EmotionSIP
import EmotionTapServer
import EmotionTestSupport
import EmotionTraffic
import EmotionUDP
import Foundation
import Logging
import Testing

/// The SIPREC sessions driven directly (no SIP stack): what an INVITE makes of the leg manager.
@Suite("SIPREC sessions, in-process", .serialized)
struct RecordingSessionsTests {
    static func offer(streams: Int, agent: String = "sip:2001@agents.example.com", hold: Int? = nil) -> [UInt8] {
        var sdp = "v=0\no=SRC 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
        for i in 1...streams {
            let mode = hold == i ? "inactive" : "sendonly"
            sdp += "m=audio \(30000 + 2 * i) RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=label:\(i)\na=\(mode)\n"
        }
        let xml = """
            <?xml version="1.0"?><recording xmlns="urn:ietf:params:xml:ns:recording:1">
            <session session_id="hVpd7YQgRW2n/D22h7q60JQ=="/>
            <participant participant_id="A"><nameID aor="\(agent)"/></participant>
            <stream stream_id="S1"><label>1</label></stream>
            <participantstreamassoc participant_id="A"><send>S1</send></participantstreamassoc>
            </recording>
            """
        let body =
            "--b\nContent-Type: application/sdp\n\n\(sdp)\n--b\nContent-Type: application/rs-metadata+xml\n\n\(xml)\n--b--\n"
        return Array(body.replacingOccurrences(of: "\n", with: "\r\n").utf8)
    }

    func service(ports: Int, configure: (inout ServerConfig) -> Void = { _ in }) throws -> EmotionTapService {
        var config = ServerConfig()
        config.rtpPorts = TestPorts.block(ports)
        config.eventTargets = []
        config.eventLogPath = nil
        config.history.store = nil
        config.sip.listen = "127.0.0.1:\(TestPorts.one())"
        configure(&config)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return try EmotionTapService(config: config, model: try EmotionModel.builtIn(), logger: logger)
    }

    /// Legs end on their worker's next turn: wait for it (bounded). Async, so the wait does not hold a
    /// thread of the shared pool the in-process API tests' handlers run on.
    func settled(_ s: EmotionTapService, legs: Int) async throws -> Bool {
        let deadline = Date().addingTimeInterval(5)
        while s.manager.activeCount != legs, Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
        return s.manager.activeCount == legs
    }

    func invite(
        _ s: EmotionTapService, id: UInt, streams: Int, reinvite: Bool = false, body: [UInt8]? = nil
    ) throws -> SIPAnswer {
        try #require(s.recordings).invite(
            SIPInvite(
                dialog: SIPDialog(testID: id), isReinvite: reinvite, callID: "abc/def=1@src.example",
                contentType: "multipart/mixed;boundary=b", body: body ?? Self.offer(streams: streams),
                require: ["siprec"]))
    }

    @Test("over sip.max_streams is 503 with nothing opened; the call id comes from the Call-ID or the session id")
    func limitsAndCallID() async throws {
        let s = try service(ports: 10) {
            $0.sip.maxStreams = 2; $0.sip.agentAORs = ["*@agents.example.com"]
        }
        let refused = try invite(s, id: 1, streams: 3)
        #expect(refused.status == 503 && refused.reason.contains("over 2 streams"))
        #expect(s.manager.activeCount == 0)
        let ok = try invite(s, id: 2, streams: 2)
        #expect(ok.status == 200 && ok.sdp?.contains("a=recvonly") == true)
        let legs = s.manager.snapshots()
        #expect(legs.count == 2)
        #expect(Set(legs.map(\.identity.callID)) == ["abc-def-1@src.example"], "the Call-ID, made a valid call id")
        #expect(Set(legs.map(\.identity.role)) == ["agent", "unknown"], "stream 2 has no participant in the metadata")
        s.recordings?.ended(SIPDialog(testID: 2), reason: "bye")
        #expect(try await settled(s, legs: 0))
        let bySession = try service(ports: 4) { $0.sip.callIDSource = .sessionID }
        #expect(try invite(bySession, id: 3, streams: 1).status == 200)
        #expect(bySession.manager.snapshots().first?.identity.callID == "hVpd7YQgRW2n-D22h7q60JQ--")
        bySession.manager.shutdown()
        s.manager.shutdown()
    }

    @Test("no free RTP port for the second stream: 503, and the first stream's leg is undone")
    func noPort() async throws {
        // The manager reserves up to 8 candidate ports per leg; one port in the range leaves none for the second.
        let s = try service(ports: 1)
        let answer = try invite(s, id: 4, streams: 2)
        #expect(answer.status == 503 && answer.reason.contains("no free RTP port"), "\(answer)")
        #expect(try await settled(s, legs: 0), "never a half-made session")
        #expect(s.recordings?.snapshots().isEmpty == true)
        let reinviteUnknown = try invite(s, id: 99, streams: 1, reinvite: true)
        #expect(reinviteUnknown.status == 481)
        s.manager.shutdown()
    }

    @Test("re-INVITE: hold keeps the leg (answered inactive); a transfer gives the label's new participant a new leg")
    func holdAndTransfer() async throws {
        let s = try service(ports: 20) { $0.sip.agentAORs = ["*@agents.example.com"] }
        #expect(try invite(s, id: 5, streams: 2).status == 200)
        func legOf(_ label: String) -> String? {
            s.recordings?.snapshots().first?.streams.first { $0.label == label }?.legID
        }
        let (agentLeg, customerLeg) = (try #require(legOf("1")), try #require(legOf("2")))
        let hold = try invite(s, id: 5, streams: 2, reinvite: true, body: Self.offer(streams: 2, hold: 2))
        #expect(hold.status == 200 && hold.sdp?.contains("a=inactive") == true)
        #expect(legOf("1") == agentLeg && legOf("2") == customerLeg, "hold keeps both legs")
        let transfer = try invite(
            s, id: 5, streams: 2, reinvite: true, body: Self.offer(streams: 2, agent: "sip:2002@agents.example.com"))
        #expect(transfer.status == 200)
        let newAgent = try #require(legOf("1"))
        #expect(newAgent != agentLeg && legOf("2") == customerLeg)
        #expect(
            s.recordings?.snapshots().first?.streams.first { $0.label == "1" }?.participant
                == "sip:2002@agents.example.com")
        #expect(try await settled(s, legs: 2), "the old agent leg ended")
        #expect(s.manager.snapshot(legID: newAgent)?.identity.recording?.participant == "sip:2002@agents.example.com")
        s.manager.shutdown()
    }

    @Test("a stream on hold keeps its leg past the media timeout; a silent stream that is not on hold times out")
    func holdOutlivesTimeout() async throws {
        let s = try service(ports: 20) { $0.legTimeoutSeconds = 1 }
        #expect(try invite(s, id: 6, streams: 2).status == 200)
        #expect(try invite(s, id: 6, streams: 2, reinvite: true, body: Self.offer(streams: 2, hold: 2)).status == 200)
        let held = try #require(s.recordings?.snapshots().first?.streams.first { $0.label == "2" }?.legID)
        #expect(try await settled(s, legs: 1), "stream 1 got no RTP for over 1 s and timed out")
        #expect(s.manager.snapshot(legID: held) != nil, "the held stream's leg is still there")
        // Off hold: the timeout counts again.
        #expect(try invite(s, id: 6, streams: 2, reinvite: true).status == 200)
        let streams = s.recordings?.snapshots().first?.streams ?? []
        #expect(streams.first { $0.label == "2" }?.legID == held, "off hold: the same leg goes on")
        #expect(streams.first { $0.label == "1" }?.legID != nil, "stream 1, timed out before, has a new leg")
        s.manager.shutdown()
    }

    @Test(
        "a re-INVITE that moves Opus to another payload type keeps the leg, which then decodes the new type; an offerless one gets our last SDP"
    )
    func payloadTypeMove() async throws {
        let s = try service(ports: 20)
        func opus(on pt: Int) -> [UInt8] {
            let sdp =
                "v=0\r\no=SRC 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                + "m=audio 30002 RTP/AVP \(pt)\r\na=rtpmap:\(pt) opus/48000/2\r\na=label:1\r\na=sendonly\r\n"
            return Array(sdp.utf8)
        }
        func send(_ body: [UInt8], reinvite: Bool) throws -> SIPAnswer {
            try #require(s.recordings).invite(
                SIPInvite(
                    dialog: SIPDialog(testID: 7), isReinvite: reinvite, callID: "pt-move",
                    contentType: "application/sdp",
                    body: body))
        }
        #expect(try send(opus(on: 96), reinvite: false).status == 200)
        let stream = try #require(s.recordings?.snapshots().first?.streams.first)
        let leg = try #require(stream.legID), port = try #require(stream.port)
        let moved = try send(opus(on: 97), reinvite: true)
        #expect(moved.status == 200)
        // A refresh without SDP is offered what we answered last.
        let refresh = try send([], reinvite: true)
        #expect(refresh.status == 200 && refresh.sdp == moved.sdp)
        #expect(s.recordings?.snapshots().first?.streams.first?.legID == leg, "same leg")
        let audio = try Fixtures.audio("crema-1009_DFA_ANG_XX.wav")
        let frames = try PayloadFrames(audio, codec: .opus, dynamicPayloadType: 97)
        _ = try RTPFileSender(frames: frames, destination: try UDPEndpoint("127.0.0.1:\(port)"), fast: true).run()
        let deadline = Date().addingTimeInterval(5)
        var rtp = s.manager.snapshot(legID: leg)?.rtp
        while Date() < deadline, (rtp?.packets ?? 0) < UInt64(frames.payloads.count) {
            try await Task.sleep(for: .milliseconds(100))
            rtp = s.manager.snapshot(legID: leg)?.rtp
        }
        #expect(rtp?.packets == UInt64(frames.payloads.count))
        #expect(rtp?.unknownPayloadType == 0, "PT 97 is Opus now: \(String(describing: rtp))")
        s.manager.shutdown()
    }
}
