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
        let sipPort = TestPorts.block(2, band: .blackBox).lowerBound
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
        let starts = events.compactMap { e in e.legStart.map { (e.legID ?? "", e.leg?.role ?? "", $0, e.leg?.agentID) }
        }
        let agent = try #require(starts.first { $0.2.recording?.label == "1" })
        let customer = try #require(starts.first { $0.2.recording?.label == "2" })
        #expect(agent.1 == "agent" && agent.2.recording?.participant == "sip:2001@agents.example.com")
        #expect(customer.1 == "customer" && customer.2.recording?.participant?.hasPrefix("sip:+1555") == true)
        #expect(agent.2.recording?.session == customer.2.recording?.session)
        // Both legs name the session's agent (the participant that matches sip.agent_aors), for reports.
        #expect(agent.3 == "2001@agents.example.com" && customer.3 == "2001@agents.example.com", "\(starts.map(\.3))")
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
        let sipPort = TestPorts.block(2, band: .blackBox).lowerBound
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
        let sipPort = TestPorts.block(2, band: .blackBox).lowerBound
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
        "session timers: a 3 s session refreshed by re-INVITE outlives its first interval, then ends unrefreshed with BYE (Reason 408) and leg.end session_expired",
        .enabled(
            if: sipp != nil, "sipp (Debian package sip-tester) is not installed; scripts/install-deps.sh installs it"))
    func sessionTimer() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let sipPort = TestPorts.block(2, band: .blackBox).lowerBound
        let service = try ServiceProcess(
            eventPort: receiver.port, legTimeout: 30,
            extraConfig: "sip: {listen: \"127.0.0.1:\(sipPort)\", session_expires: 30, min_session_expires: 2}")
        let started = Date()
        let sipp = try runSipp(
            "siprec-session-timer.xml", sipPort: sipPort, localPort: sipPort + 1, in: service.directory)
        defer { if sipp.isRunning { sipp.terminate() } }
        // The scenario fails on a BYE during its refresh pause, and on a BYE without cause=408.
        #expect(wait(sipp, seconds: 30) == 0, "sipp refreshed once and then got the server's BYE with Reason 408")
        let lasted = Date().timeIntervalSince(started)
        #expect(lasted > 4.5 && lasted < 15, "refreshed at 2 s, so it ends about 5 s in: \(lasted)")
        #expect(receiver.wait(seconds: 5) { events in events.contains(where: \.isLegEnd) })
        #expect(receiver.events.first(where: \.isLegEnd)?.legEnd?.reason == "session_expired")
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
        let sipPort = TestPorts.block(2, band: .blackBox).lowerBound
        let service = try ServiceProcess(
            eventPort: receiver.port, extraConfig: "sip: {listen: \"127.0.0.1:\(sipPort)\"}")
        let sipp = try runSipp(
            "siprec-bad.xml", sipPort: sipPort, localPort: sipPort + 1, in: service.directory, transport: transport)
        defer { if sipp.isRunning { sipp.terminate() } }
        #expect(wait(sipp, seconds: 40) == 0, "every bad INVITE got its expected status, and OPTIONS a 200")
        // The standard phrase on the status line; what was wrong in a Warning header.
        let trace =
            (try? String(
                contentsOf: service.directory.appendingPathComponent("siprec-bad.xml.log"), encoding: .utf8)) ?? ""
        #expect(
            trace.contains("SIP/2.0 488 Not Acceptable Here\r\n") || trace.contains("SIP/2.0 488 Not Acceptable Here\n")
        )
        #expect(trace.contains("SIP/2.0 400 Bad Request"), "\(trace.prefix(1500))")
        #expect(trace.contains("Warning: 399 emotiontap \""))
        #expect((try service.json("GET", "/v1/legs").1["legs"] as? [Any])?.isEmpty == true)
        #expect((try service.json("GET", "/v1/sessions").1["sessions"] as? [Any])?.isEmpty == true)
        let metrics = try service.request("GET", "/metrics").1
        #expect(metrics.contains(#"emotiontap_sip_errors_total{status="400"} 2"#))
        #expect(metrics.contains(#"emotiontap_sip_errors_total{status="488"} 2"#))
        #expect(service.process.isRunning)
        _ = service.terminate()
    }

    static let openssl = ["/usr/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A self-signed certificate for 127.0.0.1 laid out as Sofia-SIP reads it: agent.pem (key and
    /// certificate) and cafile.pem in `certs`; returns the certificate's path for the client to trust.
    func makeTLSCertificates(in dir: URL) throws -> (certs: URL, cert: URL) {
        let certs = dir.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        let key = dir.appendingPathComponent("key.pem"), cert = dir.appendingPathComponent("cert.pem")
        let made = try run(
            URL(fileURLWithPath: Self.openssl!),
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.path, "-out", cert.path, "-days", "1",
                "-subj", "/CN=127.0.0.1",
            ], timeout: 30)
        guard made.status == 0 else { throw HarnessError("openssl req: \(made.stderr)") }
        let agent = try String(contentsOf: key, encoding: .utf8) + String(contentsOf: cert, encoding: .utf8)
        try agent.write(to: certs.appendingPathComponent("agent.pem"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: cert, to: certs.appendingPathComponent("cafile.pem"))
        return (certs, cert)
    }

    /// Sends `request` over TLS with OpenSSL's client, keeps the connection `holdSeconds` for answers,
    /// and returns what came back.
    func sendOverTLS(
        _ request: String, port: Int, trusting cert: URL, in dir: URL, holdSeconds: Int
    ) throws
        -> CommandResult
    {
        let file = dir.appendingPathComponent("request-\(UUID().uuidString).txt")
        try request.write(to: file, atomically: true, encoding: .utf8)
        return try run(
            URL(fileURLWithPath: "/bin/sh"),
            [
                "-c",
                // -quiet implies -ign_eof: -no_ign_eof makes it leave when the input ends; timeout bounds it.
                "(cat '\(file.path)'; sleep \(holdSeconds)) | timeout \(holdSeconds + 8) \(Self.openssl!) s_client "
                    + "-connect 127.0.0.1:\(port) -quiet -no_ign_eof -CAfile '\(cert.path)' -verify_return_error",
            ], timeout: Double(holdSeconds + 12))
    }

    @Test(
        "SIP over TLS (sip.tls_listen with a certificate directory): OpenSSL's client gets 200 for OPTIONS",
        .enabled(if: openssl != nil, "openssl is not installed"))
    func tls() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("emotiontap-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (certs, cert) = try makeTLSCertificates(in: dir)
        let sipPort = TestPorts.block(2, band: .blackBox).lowerBound
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
        let probe = try sendOverTLS(options, port: sipPort + 1, trusting: cert, in: dir, holdSeconds: 2)
        #expect(probe.stdout.contains("SIP/2.0 200 OK"), "\(probe.stdout) \(probe.stderr)")
        #expect(probe.stdout.contains("Contact: <sips:127.0.0.1:\(sipPort + 1)"))
        _ = service.terminate()
    }

    /// The INVITE of `siprec-timeout.xml` (one PCMU stream, labels and participants in the metadata)
    /// with sipp's keywords filled in by hand, CRLF line ends and the body's real length.
    func siprecInvite(to port: Int, transport: String, callID: String, mediaPort: Int) throws -> String {
        let scenario = try String(
            contentsOf: Self.scenarios.appendingPathComponent("siprec-timeout.xml"), encoding: .utf8)
        guard let cdataStart = scenario.range(of: "<![CDATA["), let cdataEnd = scenario.range(of: "]]>") else {
            throw HarnessError("siprec-timeout.xml: no INVITE")
        }
        let lines = scenario[cdataStart.upperBound..<cdataEnd.lowerBound].split(
            separator: "\n", omittingEmptySubsequences: false
        ).map { $0.hasPrefix("      ") ? String($0.dropFirst(6)) : String($0) }
        let filled = lines.joined(separator: "\r\n").trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "[remote_ip]", with: "127.0.0.1")
            .replacingOccurrences(of: "[remote_port]", with: "\(port)")
            .replacingOccurrences(of: "[transport]", with: transport)
            .replacingOccurrences(of: "[local_ip]", with: "127.0.0.1")
            .replacingOccurrences(of: "[local_port]", with: "5999")
            .replacingOccurrences(of: "[branch]", with: "z9hG4bK-\(callID)")
            .replacingOccurrences(of: "[pid]SIPpTag00[call_number]", with: "src-\(callID)")
            .replacingOccurrences(of: "[call_id]", with: callID)
            .replacingOccurrences(of: "[media_ip]", with: "127.0.0.1")
            .replacingOccurrences(of: "[media_port]", with: "\(mediaPort)")
        guard let split = filled.range(of: "\r\n\r\n") else { throw HarnessError("no body in the INVITE") }
        let body = String(filled[split.upperBound...]) + "\r\n"
        return String(filled[..<split.lowerBound]).replacingOccurrences(
            of: "[len]", with: "\(body.utf8.count)") + "\r\n\r\n" + body
    }

    @Test(
        "a SIPREC INVITE over TLS is answered 200 with a recvonly SDP, its stream becomes a leg, and the leg ends when no RTP comes",
        .enabled(if: openssl != nil, "openssl is not installed"))
    func tlsInvite() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("emotiontap-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (certs, cert) = try makeTLSCertificates(in: dir)
        let sipPort = TestPorts.block(2, band: .blackBox).lowerBound
        let service = try ServiceProcess(
            eventPort: receiver.port, legTimeout: 2,
            extraConfig: """
                sip: {listen: "127.0.0.1:\(sipPort)", tls_listen: "127.0.0.1:\(sipPort + 1)", tls_cert_dir: \(certs.path)}
                """)
        let invite = try siprecInvite(
            to: sipPort + 1, transport: "TLS", callID: "tls-invite-\(sipPort)", mediaPort: 6000)
        let answer = LockedResult()
        let client = Thread {
            answer.set(try? self.sendOverTLS(invite, port: sipPort + 1, trusting: cert, in: dir, holdSeconds: 3))
        }
        client.start()
        let streams = try firstSessionStreams(service)
        #expect(streams.count == 1 && streams.first?["label"] as? String == "2", "\(streams)")
        let deadline = Date().addingTimeInterval(20)
        while answer.get() == nil, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        let reply = try #require(answer.get())
        #expect(reply.stdout.contains("SIP/2.0 200 OK"), "\(reply.stdout) \(reply.stderr)")
        #expect(reply.stdout.contains("a=recvonly") && reply.stdout.contains("a=label:2"))
        #expect(reply.stdout.contains("Contact: <sips:127.0.0.1:\(sipPort + 1)"))
        // No RTP: the leg times out and the session goes.
        #expect(receiver.wait(seconds: 10) { events in events.contains(where: \.isLegEnd) })
        #expect(receiver.events.first(where: \.isLegEnd)?.legEnd?.reason == "timeout")
        _ = service.terminate()
    }
}

/// The TLS client's result, handed from its thread to the test's.
private final class LockedResult: @unchecked Sendable {
    private let lock = NSLock()
    private var value: CommandResult?
    func set(_ v: CommandResult?) { lock.withLock { value = v } }
    func get() -> CommandResult? { lock.withLock { value } }
}
