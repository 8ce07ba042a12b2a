import EmotionMedia
import EmotionProtocol
import EmotionTestSupport
import Foundation
import Testing
@testable import EmotionCore

/// End to end: a real `emotiontap serve` on loopback, real RTP from `emotiontap send`, events on a real UDP socket.
@Suite("live service, end to end", .serialized)
struct LiveServiceTests {
    func types(_ events: [Event], leg: String) -> [String] {
        events.filter { $0.legID == leg }.map(\.type)
    }

    @Test(
        "angry and neutral legs: leg.start, emotion events, the upset state, leg.end at DELETE, valid and signed"
    )
    func angryAndNeutral() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        // Thresholds set in the config, over the model's: this angry clip (calibrated upset about 0.75, less
        // as the leg's baseline learns the same clip repeated) stays under the shipped enter threshold, which
        // is chosen for calls (docs/MODEL.md); here the state event's path is under test, and that a config
        // can override the model.
        let service = try ServiceProcess(
            eventPort: receiver.port, policy: "{enter_upset: 0.65, exit_upset: 0.5, enter_windows: 1}")
        let dir = service.directory
        let angry = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 4, into: dir)
        let neutral = try Fixtures.repeated("crema-1022_IWW_NEU_XX.wav", times: 4, into: dir)
        let (angryLeg, angryPort) = try service.createLeg(call: "call-e2e", role: "customer", codec: "pcmu")
        let (neutralLeg, neutralPort) = try service.createLeg(call: "call-e2e", role: "agent")

        let (s1, _, e1) = try emotiontap(["send", angry.path, "--to", "127.0.0.1:\(angryPort)", "--fast"])
        let (s2, _, e2) = try emotiontap([
            "send", neutral.path, "--to", "127.0.0.1:\(neutralPort)", "--fast", "--codec", "pcmu",
        ])
        #expect(s1 == 0 && s2 == 0, "\(e1) \(e2)")
        let enoughWindows = receiver.wait(seconds: 10) { events in
            events.filter { event in event.isEmotion }.count >= 8
        }
        #expect(enoughWindows)
        // Call state for a dialplan, JSON and text.
        let (status, call) = try service.json("GET", "/v1/calls/call-e2e")
        #expect(status == 200)
        #expect((call["legs"] as? [[String: Any]])?.count == 2)
        let (textStatus, escalate) = try service.request("GET", "/v1/calls/call-e2e?format=text&field=escalate")
        #expect(textStatus == 200 && (escalate == "0" || escalate == "1"))

        #expect(try service.json("DELETE", "/v1/legs/\(angryLeg)").0 == 200)
        #expect(try service.json("DELETE", "/v1/legs/\(neutralLeg)").0 == 200)
        let bothEnded = receiver.wait(seconds: 10) { events in events.filter { event in event.isLegEnd }.count == 2 }
        #expect(bothEnded)

        let events = receiver.events
        #expect(receiver.undecodable.isEmpty, "\(receiver.undecodable)")
        for leg in [angryLeg, neutralLeg] {
            let t = types(events, leg: leg)
            #expect(t.first == "leg.start", "\(leg): \(t)")
            #expect(t.contains("emotion"))
            #expect(t.last == "leg.end")
        }
        let angryStates = events.filter { $0.legID == angryLeg }.compactMap(\.stateChange)
        #expect(angryStates.first?.to == .upset, "the angry leg must turn upset")
        let angryUpset = events.filter { $0.legID == angryLeg }.compactMap { $0.emotion?.reading.upset }
        let neutralUpset = events.filter { $0.legID == neutralLeg }.compactMap { $0.emotion?.reading.upset }
        let angryMean: Double = angryUpset.reduce(0, +) / Double(max(1, angryUpset.count))
        let neutralMean: Double = neutralUpset.reduce(0, +) / Double(max(1, neutralUpset.count))
        #expect(angryMean > neutralMean)
        let end = try #require(events.first { $0.legID == angryLeg && $0.isLegEnd }?.legEnd)
        #expect(end.reason == "api")

        // seq strictly increasing, every datagram signed and under 1,200 bytes, all valid against the schema.
        let seqs = events.map(\.sequence)
        #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count)
        for datagram in receiver.received {
            #expect(datagram.utf8.count < 1200)
            #expect(verifySignature(datagram, key: service.hmacKey))
        }
        // A flipped byte breaks the signature.
        var tampered = Array(receiver.received[0].utf8)
        tampered[20] ^= 0x01
        #expect(!verifySignature(String(decoding: tampered, as: UTF8.self), key: service.hmacKey))
        let (valid, report) = try validateAgainstSchema(service.logPath)
        #expect(valid, "\(report)")
        // The log holds what the socket got (and the heartbeats).
        let logged = try String(contentsOf: service.logPath, encoding: .utf8).split(separator: "\n").count
        #expect(logged >= receiver.received.count)
        #expect(service.terminate() == 0)
    }

    @Test("live verdicts equal `emotiontap analyze` on the same clip (no loss)")
    func liveEqualsOffline() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let service = try ServiceProcess(eventPort: receiver.port)
        let clip = try Fixtures.repeated("crema-1015_ITH_SAD_XX.wav", times: 3, into: service.directory)
        let (leg, port) = try service.createLeg(call: "parity", role: "customer", codec: "pcmu")
        #expect(try emotiontap(["send", clip.path, "--to", "127.0.0.1:\(port)", "--fast"]).0 == 0)
        Thread.sleep(forTimeInterval: 0.5)
        _ = try service.json("DELETE", "/v1/legs/\(leg)")
        #expect(receiver.wait(seconds: 10) { $0.contains { $0.isLegEnd } })
        let live = receiver.parsed.filter { $0["type"] as? String == "emotion" }
            .map { (($0["start"] as? Double) ?? -1, ($0["end"] as? Double) ?? -1, ($0["upset"] as? Double) ?? -1) }

        let (status, out, err) = try emotiontap(["analyze", clip.path])
        #expect(status == 0, "\(err)")
        let offline = out.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        .filter { $0["upset"] is Double }
        .map { (($0["start"] as? Double) ?? -2, ($0["end"] as? Double) ?? -2, ($0["upset"] as? Double) ?? -2) }
        #expect(!live.isEmpty)
        #expect(live.count == offline.count, "live \(live.count) windows, offline \(offline.count)")
        for (a, b) in zip(live, offline) {
            #expect(abs(a.0 - b.0) < 0.011 && abs(a.1 - b.1) < 0.011, "window \(a) vs \(b)")
            #expect(abs(a.2 - b.2) < 0.001, "upset \(a.2) live vs \(b.2) offline")
        }
        _ = service.terminate()
    }

    @Test("10 % loss and reordering: the leg goes on, concealment fills the gaps, statistics count the loss")
    func lossAndReordering() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let service = try ServiceProcess(eventPort: receiver.port)
        let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 4, into: service.directory)
        let (leg, port) = try service.createLeg(call: "lossy", role: "customer")
        let (status, _, err) = try emotiontap([
            "send", clip.path, "--to", "127.0.0.1:\(port)", "--fast", "--loss", "0.1", "--reorder", "0.05", "--seed",
            "3",
        ])
        #expect(status == 0)
        // "send: N packets ..., D dropped"
        let dropped =
            Int(err.components(separatedBy: ", ").first { $0.hasSuffix("dropped") }?.split(separator: " ").first ?? "")
            ?? -1
        #expect(dropped > 20)
        Thread.sleep(forTimeInterval: 0.5)
        _ = try service.json("DELETE", "/v1/legs/\(leg)")
        #expect(receiver.wait(seconds: 10) { $0.contains { $0.isLegEnd } })
        let events = receiver.parsed
        #expect(events.filter { $0["type"] as? String == "emotion" }.count >= 4)
        let end = try #require(events.first { $0["type"] as? String == "leg.end" })
        let rtp = try #require(end["rtp"] as? [String: Any])
        let lost = rtp["lost"] as? Int ?? -1
        // The last packet's loss is invisible to any receiver; everything else is counted.
        #expect(abs(lost - dropped) <= 1, "lost \(lost), dropped \(dropped)")
        #expect((rtp["concealed_ms"] as? Int ?? 0) >= 20 * (dropped - 1))
        #expect((rtp["late"] as? Int ?? 0) + (rtp["reordered"] as? Int ?? 0) > 0)
        _ = service.terminate()
    }

    @Test("SIGTERM with active legs: a leg.end (reason shutdown) for each, then exit 0")
    func shutdown() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let service = try ServiceProcess(eventPort: receiver.port)
        var legs: [String] = []
        for i in 0..<3 {
            let (leg, port) = try service.createLeg(call: "shutdown", role: i == 0 ? "customer" : "agent")
            legs.append(leg)
            _ = try emotiontap([
                "send", Fixtures.url("crema-1011_IEO_NEU_XX.wav").path, "--to", "127.0.0.1:\(port)", "--fast",
            ])
        }
        #expect(service.terminate(within: 15) == 0)
        let allEnded = receiver.wait(seconds: 5) { events in events.filter { event in event.isLegEnd }.count == 3 }
        #expect(allEnded)
        let ends = receiver.parsed.filter { $0["type"] as? String == "leg.end" }
        #expect(Set(ends.compactMap { $0["leg_id"] as? String }) == Set(legs))
        #expect(ends.allSatisfy { $0["reason"] as? String == "shutdown" })
    }
}

@Suite("live service, more legs", .serialized)
struct MoreLiveTests {
    @Test("an Opus leg: dynamic payload type, decoded at 8 kHz, events come out")
    func opus() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let service = try ServiceProcess(eventPort: receiver.port)
        let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 3, into: service.directory)
        let (leg, port) = try service.createLeg(call: "opus-call", role: "customer", codec: "opus")
        #expect(
            try emotiontap([
                "send", clip.path, "--to", "127.0.0.1:\(port)", "--codec", "opus", "--fast", "--loss", "0.05",
            ]).0 == 0)
        Thread.sleep(forTimeInterval: 0.5)
        _ = try service.json("DELETE", "/v1/legs/\(leg)")
        let ended = receiver.wait(seconds: 10) { events in events.contains { event in event.isLegEnd } }
        #expect(ended)
        let events = receiver.parsed
        let start = try #require(events.first { $0["type"] as? String == "leg.start" })
        #expect(start["codec"] as? String == "opus" && start["payload_type"] as? Int == 111)
        #expect(events.filter { $0["type"] as? String == "emotion" }.count >= 3)
        let rtp = try #require(events.first { $0["type"] as? String == "leg.end" }?["rtp"] as? [String: Any])
        #expect((rtp["lost"] as? Int ?? 0) > 0 && (rtp["undecodable"] as? Int ?? 1) == 0)
        _ = service.terminate()
    }

    @Test(
        "wideband API legs: G.722 and 16 kHz L16 (on a declared dynamic payload type) decode and give events",
        arguments: [("g722", nil), ("l16-16000", 98)] as [(String, Int?)])
    func wideband(codec: String, payloadType: Int?) throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let service = try ServiceProcess(eventPort: receiver.port)
        let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 3, into: service.directory)
        let pt = payloadType.map { ",\"payload_type\":\($0)" } ?? ""
        let (status, object) = try service.json(
            "POST", "/v1/legs", body: #"{"call_id":"wide","role":"customer","codec":"\#(codec)"\#(pt)}"#)
        #expect(status == 201, "\(object)")
        let port = try #require((object["rtp"] as? [String: Any])?["port"] as? Int)
        let leg = try #require(object["leg_id"] as? String)
        var send = ["send", clip.path, "--to", "127.0.0.1:\(port)", "--codec", codec, "--fast"]
        if let payloadType { send += ["--payload-type", "\(payloadType)"] }
        #expect(try emotiontap(send).0 == 0)
        Thread.sleep(forTimeInterval: 0.5)
        _ = try service.json("DELETE", "/v1/legs/\(leg)")
        #expect(receiver.wait(seconds: 10) { events in events.contains(where: \.isLegEnd) })
        let events = receiver.parsed
        let start = try #require(events.first { $0["type"] as? String == "leg.start" })
        #expect(start["codec"] as? String == codec && start["payload_type"] as? Int == (payloadType ?? 9))
        #expect(events.filter { $0["type"] as? String == "emotion" }.count >= 3)
        let rtp = try #require(events.first { $0["type"] as? String == "leg.end" }?["rtp"] as? [String: Any])
        #expect(rtp["undecodable"] as? Int == 0 && rtp["unknown_payload_type"] as? Int == 0)
        _ = service.terminate()
    }

    @Test(
        "an SRTP leg (SDES key in the POST body) decrypts with libsrtp2; a sender with the wrong key is counted, not heard"
    )
    func srtp() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let service = try ServiceProcess(eventPort: receiver.port)
        let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 3, into: service.directory)
        let key = SDESCrypto.random(.aesCM128HMACSHA1_80, tag: nil).attribute
        let other = SDESCrypto.random(.aesCM128HMACSHA1_32, tag: nil).attribute
        var legs: [(String, Int)] = []
        for (call, suite) in [("srtp-good", key), ("srtp-bad", key.replacingOccurrences(of: "_80", with: "_32"))] {
            let (status, object) = try service.json(
                "POST", "/v1/legs", body: #"{"call_id":"\#(call)","role":"customer","codec":"pcmu","srtp":"\#(suite)"}"#
            )
            #expect(status == 201, "\(object)")
            let port = try #require((object["rtp"] as? [String: Any])?["port"] as? Int)
            legs.append((try #require(object["leg_id"] as? String), port))
        }
        let bad = try service.json(
            "POST", "/v1/legs", body: #"{"call_id":"c","role":"customer","srtp":"AES_CM_128_HMAC_SHA1_80 inline:abc"}"#)
        #expect(bad.0 == 400)
        #expect(try emotiontap(["send", clip.path, "--to", "127.0.0.1:\(legs[0].1)", "--fast", "--srtp", key]).0 == 0)
        #expect(
            try emotiontap(["send", clip.path, "--to", "127.0.0.1:\(legs[1].1)", "--fast", "--srtp", other]).0 == 0)
        Thread.sleep(forTimeInterval: 0.5)
        for (leg, _) in legs { _ = try service.json("DELETE", "/v1/legs/\(leg)") }
        #expect(receiver.wait(seconds: 10) { events in events.filter(\.isLegEnd).count == 2 })
        let events = receiver.parsed
        func end(_ call: String) -> [String: Any]? {
            (events.first { $0["type"] as? String == "leg.end" && $0["call_id"] as? String == call })?["rtp"]
                as? [String: Any]
        }
        let good = try #require(end("srtp-good")), wrong = try #require(end("srtp-bad"))
        #expect(good["srtp_auth_failed"] as? Int == 0 && (good["received"] as? Int ?? 0) >= 340)
        #expect(events.contains { $0["type"] as? String == "emotion" && $0["call_id"] as? String == "srtp-good" })
        #expect((wrong["srtp_auth_failed"] as? Int ?? 0) >= 340, "every packet under the wrong key failed: \(wrong)")
        #expect(!events.contains { $0["call_id"] as? String == "srtp-bad" && $0["type"] as? String == "leg.start" })
        #expect(service.process.isRunning)
        _ = service.terminate()
    }

    @Test("a static leg from the config, and a leg whose RTP stops ends by itself (timeout)")
    func staticLegAndTimeout() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let service = try ServiceProcess(eventPort: receiver.port, legTimeout: 1, staticLeg: true)
        let staticPort = service.rtpPorts.upperBound
        let clip = Fixtures.url("crema-1015_ITH_SAD_XX.wav")
        #expect(try emotiontap(["send", clip.path, "--to", "127.0.0.1:\(staticPort)", "--fast"]).0 == 0)
        // No more RTP: the 1 s timeout ends the leg by itself.
        let ended = receiver.wait(seconds: 10) { events in
            events.contains { event in event.isLegEnd && event.leg?.callID == "static-call" }
        }
        #expect(ended)
        let events = receiver.parsed.filter { $0["call_id"] as? String == "static-call" }
        #expect(events.first?["type"] as? String == "leg.start")
        #expect(events.last?["reason"] as? String == "timeout")
        #expect(events.last?["role"] as? String == "customer")
        _ = service.terminate()
    }
}

@Suite("live service under load", .serialized)
struct LoadTests {
    @Test(
        "short soak: 300 legs, 5 % loss, hostile packets; the process stays up, every leg gets events and ends"
    )
    func shortSoak() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let service = try ServiceProcess(eventPort: receiver.port, rtpPortCount: 800)
        let (status, out, err) = try emotiontap(
            [
                "loadgen", "--legs", "300", "--duration", "4", "--loss", "0.05", "--malformed", "0.01",
                "--via-api", "http://127.0.0.1:\(service.httpPort)",
                "--file", Fixtures.url("crema-1009_DFA_ANG_XX.wav").path,
            ],
            timeout: 60)
        #expect(status == 0, "\(err)")
        #expect(out.contains("300 legs"))
        #expect(service.process.isRunning, "the service survived")
        #expect(try service.request("GET", "/healthz").0 == 200)
        // Ended by loadgen's DELETEs, or by the 30 s media timeout where a DELETE failed on a loaded box (a test
        // process on 2 cores beside two others): either way every leg ends.
        let ended = receiver.wait(seconds: 45) { events in events.filter { event in event.isLegEnd }.count >= 300 }
        #expect(ended, "\(receiver.events.filter(\.isLegEnd).count) of 300 legs ended")
        let events = receiver.parsed
        #expect(events.filter { $0["type"] as? String == "leg.start" }.count == 300)
        #expect(events.filter { $0["type"] as? String == "emotion" }.count >= 300)
        let legsWithEmotion = Set(
            events.filter { $0["type"] as? String == "emotion" }.compactMap { $0["leg_id"] as? String })
        #expect(legsWithEmotion.count == 300, "every leg got emotion events")
        #expect(out.contains("hostile packets sent:"))
        #expect(service.terminate() == 0)
    }
}

@Suite("event delivery faults", .serialized)
struct EventFaultTests {
    @Test("an event target that is down (ICMP port unreachable) never holds up a leg; the JSONL log keeps every event")
    func targetDown() throws {
        // Nothing listens on this port: every datagram earns an ICMP port unreachable.
        let closedPort = try ServiceProcess.freeTCPPort()
        let service = try ServiceProcess(eventPort: closedPort)
        let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 3, into: service.directory)
        let (leg, port) = try service.createLeg(call: "deaf", role: "customer")
        #expect(try emotiontap(["send", clip.path, "--to", "127.0.0.1:\(port)", "--fast"]).0 == 0)
        Thread.sleep(forTimeInterval: 0.5)
        _ = try service.json("DELETE", "/v1/legs/\(leg)")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(service.terminate() == 0)
        let logged = try String(contentsOf: service.logPath, encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let types = logged.filter { $0["leg_id"] as? String == leg }.compactMap { $0["type"] as? String }
        #expect(types.first == "leg.start" && types.last == "leg.end")
        #expect(types.filter { $0 == "emotion" }.count >= 5)
        let summary = logged.first { $0["type"] as? String == "leg.end" }?["summary"] as? [String: Any]
        #expect((summary?["media_s"] as? Double ?? 0) > 6.5, "the leg heard all 7 s of audio")
        let seqs = logged.compactMap { $0["seq"] as? Int }
        #expect(seqs == Array(1...seqs.count), "no gap in the log's sequence numbers")
    }
}
