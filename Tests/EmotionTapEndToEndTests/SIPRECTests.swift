import EmotionProtocol
import EmotionTestSupport
import Foundation
import Testing

/// sipp as a SIPREC recording client (the SBC) against `serve` with `sip.listen`: the scenarios in
/// sip-examples/siprec, real SIP over loopback UDP to Sofia-SIP, real RTP to the answered ports.
@Suite("SIPREC with sipp", .serialized)
struct SIPRECTests {
    static let sipp = SippTests.sipp
    static let scenarios = Repo.root.appendingPathComponent("sip-examples/siprec")

    func runSipp(
        _ scenario: String, sipPort: Int, localPort: Int, in directory: URL, transport: String = "u1"
    ) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.sipp!)
        p.arguments = [
            "127.0.0.1:\(sipPort)", "-sf", Self.scenarios.appendingPathComponent(scenario).path, "-i", "127.0.0.1",
            "-p", "\(localPort)", "-mi", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "40s",
            "-trace_msg", "-message_file", directory.appendingPathComponent("\(scenario).log").path,
            "-t", transport,
        ]
        p.currentDirectoryURL = directory
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// The first session's streams as `GET /v1/sessions` lists them, once the INVITE is answered
    /// (bounded: empty after 10 s).
    func firstSessionStreams(_ service: ServiceProcess) throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(10)
        while true {
            let sessions = try service.json("GET", "/v1/sessions").1["sessions"] as? [[String: Any]] ?? []
            let streams = sessions.first?["streams"] as? [[String: Any]] ?? []
            if !streams.isEmpty || Date() >= deadline { return streams }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    func wait(_ p: Process, seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if p.isRunning { p.terminate(); return nil }
        return p.terminationStatus
    }

    @Test(
        "a recording session: two streams as two legs with roles from the metadata, a re-INVITE adds a third and keeps the others, BYE ends all",
        .enabled(
            if: sipp != nil, "sipp (Debian package sip-tester) is not installed; scripts/install-deps.sh installs it"))
    func session() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let sipPort = 17000 + Int.random(in: 0..<1000) * 2
        let service = try ServiceProcess(
            eventPort: receiver.port,
            extraConfig: "sip: {listen: \"127.0.0.1:\(sipPort)\", agent_aors: [\"*@agents.example.com\"]}")
        let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 3, into: service.directory)
        try FileManager.default.copyItem(at: clip, to: service.directory.appendingPathComponent("call.wav"))
        let sipp = try runSipp("siprec-src.xml", sipPort: sipPort, localPort: sipPort + 1, in: service.directory)
        defer { if sipp.isRunning { sipp.terminate() } }

        let streams = try firstSessionStreams(service)
        #expect(streams.count == 2)
        let byLabel = Dictionary(streams.map { ($0["label"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byLabel["1"]?["role"] as? String == "agent")
        #expect(byLabel["2"]?["role"] as? String == "customer")
        #expect(byLabel["2"]?["participant"] as? String == "sip:+15551234567@carrier.example.net")
        // sipp streams call.wav on the first m-line (the agent's); the caller's stream comes from our sender.
        let customerPort = try #require(byLabel["2"]?["port"] as? Int)
        #expect(try emotiontap(["send", clip.path, "--to", "127.0.0.1:\(customerPort)", "--fast"]).0 == 0)

        #expect(wait(sipp, seconds: 40) == 0, "the sipp SRC completed INVITE, re-INVITE and BYE")
        let ended = receiver.wait(seconds: 10) { events in events.filter(\.isLegEnd).count >= 3 }
        #expect(ended)
        let events = receiver.events
        let starts = events.compactMap { e in e.legStart.map { (e.legID ?? "", e.leg?.role ?? "", $0) } }
        let agent = try #require(starts.first { $0.2.recording?.label == "1" })
        let customer = try #require(starts.first { $0.2.recording?.label == "2" })
        #expect(agent.1 == "agent" && agent.2.recording?.participant == "sip:2001@agents.example.com")
        #expect(customer.1 == "customer" && customer.2.recording?.participant?.hasPrefix("sip:+1555") == true)
        #expect(agent.2.recording?.session == customer.2.recording?.session)
        let ends = events.filter(\.isLegEnd)
        #expect(Set(ends.compactMap(\.legID)).count == 3, "two legs kept through the re-INVITE, one added")
        #expect(ends.allSatisfy { $0.legEnd?.reason == "bye" }, "\(ends.map { $0.legEnd?.reason ?? "-" })")
        for leg in [agent.0, customer.0] {
            #expect(ends.contains { $0.legID == leg }, "leg \(leg) lived until the BYE")
            #expect(events.contains { $0.isEmotion && $0.legID == leg }, "leg \(leg) was analysed")
        }
        #expect((try service.json("GET", "/v1/sessions").1["sessions"] as? [Any])?.isEmpty == true)
        _ = service.terminate()
        let (valid, report) = try validateAgainstSchema(service.logPath)
        #expect(valid, "the SIPREC legs' events follow the schema: \(report)")
    }

    @Test(
        "an SRTP stream (RTP/SAVP with SDES): answered RTP/SAVP with our own key, decrypted with the offered one",
        .enabled(
            if: sipp != nil, "sipp (Debian package sip-tester) is not installed; scripts/install-deps.sh installs it"))
    func srtpStream() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let sipPort = 19600 + Int.random(in: 0..<200) * 2
        let service = try ServiceProcess(
            eventPort: receiver.port, extraConfig: "sip: {listen: \"127.0.0.1:\(sipPort)\"}")
        let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 3, into: service.directory)
        let sipp = try runSipp("siprec-srtp.xml", sipPort: sipPort, localPort: sipPort + 1, in: service.directory)
        defer { if sipp.isRunning { sipp.terminate() } }
        let rtpPort = try #require(try firstSessionStreams(service).first?["port"] as? Int)
        // The key the scenario offers first (RFC 4568's example).
        let key = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
        #expect(try emotiontap(["send", clip.path, "--to", "127.0.0.1:\(rtpPort)", "--fast", "--srtp", key]).0 == 0)
        #expect(
            wait(sipp, seconds: 30) == 0, "sipp checked the answer: RTP/SAVP with our own AES_CM_128_HMAC_SHA1_80 key")
        #expect(receiver.wait(seconds: 10) { events in events.contains(where: \.isLegEnd) })
        let events = receiver.parsed
        let end = try #require(events.first { $0["type"] as? String == "leg.end" })
        let rtp = try #require(end["rtp"] as? [String: Any])
        #expect(end["reason"] as? String == "bye")
        #expect(rtp["srtp_auth_failed"] as? Int == 0 && (rtp["received"] as? Int ?? 0) >= 340, "\(rtp)")
        #expect(events.contains { $0["type"] as? String == "emotion" })
        _ = service.terminate()
    }

    @Test(
        "a session whose RTP never comes: its leg times out and the server sends BYE",
        .enabled(
            if: sipp != nil, "sipp (Debian package sip-tester) is not installed; scripts/install-deps.sh installs it"))
    func mediaTimeout() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let sipPort = 14000 + Int.random(in: 0..<400) * 2
        let service = try ServiceProcess(
            eventPort: receiver.port, legTimeout: 2, extraConfig: "sip: {listen: \"127.0.0.1:\(sipPort)\"}")
        let sipp = try runSipp("siprec-timeout.xml", sipPort: sipPort, localPort: sipPort + 1, in: service.directory)
        defer { if sipp.isRunning { sipp.terminate() } }
        #expect(wait(sipp, seconds: 30) == 0, "sipp got the server's BYE and answered it")
        #expect(receiver.wait(seconds: 5) { events in events.contains(where: \.isLegEnd) })
        #expect(receiver.events.first(where: \.isLegEnd)?.legEnd?.reason == "timeout")
        #expect((try service.json("GET", "/v1/sessions").1["sessions"] as? [Any])?.isEmpty == true)
        _ = service.terminate()
    }

    @Test(
        "malformed INVITEs get 400 or 488, never a half-made leg; OPTIONS is answered (over UDP and TCP)",
        .enabled(
            if: sipp != nil, "sipp (Debian package sip-tester) is not installed; scripts/install-deps.sh installs it"),
        arguments: ["u1", "t1"])
    func badInvites(transport: String) throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let sipPort = (transport == "u1" ? 16000 : 16500) + Int.random(in: 0..<250) * 2
        let service = try ServiceProcess(
            eventPort: receiver.port, extraConfig: "sip: {listen: \"127.0.0.1:\(sipPort)\"}")
        let sipp = try runSipp(
            "siprec-bad.xml", sipPort: sipPort, localPort: sipPort + 1, in: service.directory, transport: transport)
        defer { if sipp.isRunning { sipp.terminate() } }
        #expect(wait(sipp, seconds: 40) == 0, "every bad INVITE got its expected status, and OPTIONS a 200")
        #expect((try service.json("GET", "/v1/legs").1["legs"] as? [Any])?.isEmpty == true)
        #expect((try service.json("GET", "/v1/sessions").1["sessions"] as? [Any])?.isEmpty == true)
        let metrics = try service.request("GET", "/metrics").1
        #expect(metrics.contains(#"emotiontap_sip_errors_total{status="400"} 2"#))
        #expect(metrics.contains(#"emotiontap_sip_errors_total{status="488"} 2"#))
        #expect(service.process.isRunning)
        _ = service.terminate()
    }

    static let openssl = ["/usr/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(
        "SIP over TLS (sip.tls_listen with a certificate directory): OpenSSL's client gets 200 for OPTIONS",
        .enabled(if: openssl != nil, "openssl is not installed"))
    func tls() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("emotiontap-tls-\(UUID().uuidString)")
        let certs = dir.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("key.pem"), cert = dir.appendingPathComponent("cert.pem")
        let made = try run(
            URL(fileURLWithPath: Self.openssl!),
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.path, "-out", cert.path, "-days", "1",
                "-subj", "/CN=127.0.0.1",
            ], timeout: 30)
        #expect(made.status == 0, "\(made.stderr)")
        // Sofia-SIP reads the key and certificate from agent.pem, the CA from cafile.pem.
        let agent = try String(contentsOf: key, encoding: .utf8) + String(contentsOf: cert, encoding: .utf8)
        try agent.write(to: certs.appendingPathComponent("agent.pem"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: cert, to: certs.appendingPathComponent("cafile.pem"))
        let sipPort = 15200 + Int.random(in: 0..<300) * 2
        let service = try ServiceProcess(
            eventPort: receiver.port,
            extraConfig: """
                sip: {listen: "127.0.0.1:\(sipPort)", tls_listen: "127.0.0.1:\(sipPort + 1)", tls_cert_dir: \(certs.path)}
                """)
        let options = [
            "OPTIONS sip:srs@127.0.0.1:\(sipPort + 1);transport=tls SIP/2.0",
            "Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-tls-\(sipPort)", "From: <sip:probe@127.0.0.1>;tag=1",
            "To: <sip:srs@127.0.0.1>", "Call-ID: tls-\(sipPort)@127.0.0.1", "CSeq: 1 OPTIONS", "Max-Forwards: 70",
            "Content-Length: 0", "", "",
        ].joined(separator: "\r\n")
        let request = dir.appendingPathComponent("options.txt")
        try options.write(to: request, atomically: true, encoding: .utf8)
        // s_client sends the request, then keeps the connection open long enough for the answer.
        let probe = try run(
            URL(fileURLWithPath: "/bin/sh"),
            [
                "-c",
                // -quiet implies -ign_eof: -no_ign_eof makes it leave when the input ends; timeout bounds it.
                "(cat '\(request.path)'; sleep 2) | timeout 10 \(Self.openssl!) s_client -connect 127.0.0.1:\(sipPort + 1) "
                    + "-quiet -no_ign_eof -CAfile '\(cert.path)' -verify_return_error",
            ], timeout: 20)
        #expect(probe.stdout.contains("SIP/2.0 200 OK"), "\(probe.stdout) \(probe.stderr)")
        #expect(probe.stdout.contains("Contact: <sips:127.0.0.1:\(sipPort + 1)"))
        _ = service.terminate()
    }
}
