import EmotionProtocol
import EmotionTestSupport
import Foundation
import Testing

/// The sipp scenarios in sip-examples/sipp: a caller streams a WAV as real RTP to the media address
/// that a stand-in switch answered with, which is an EmotionTap leg.
@Suite("sipp media fork", .serialized)
struct SippTests {
    static let sipp = ["/usr/bin/sipp", "/usr/local/bin/sipp"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static let scenarios = Repo.root.appendingPathComponent("sip-examples/sipp")

    @Test(
        "sipp UAC -> sipp UAS answering with an EmotionTap leg: RTP arrives, events come out",
        .enabled(
            if: sipp != nil, "sipp (Debian package sip-tester) is not installed; scripts/install-deps.sh installs it"))
    func sippForkedCall() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let service = try ServiceProcess(eventPort: receiver.port)
        let (leg, port) = try service.createLeg(call: "sipp-call", role: "customer")
        // rtp_stream reads call.wav from the working directory.
        let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 2, into: service.directory)
        try FileManager.default.moveItem(at: clip, to: service.directory.appendingPathComponent("call.wav"))
        let sipPort = TestPorts.block(2, band: .blackBox).lowerBound

        let uas = Process()
        uas.executableURL = URL(fileURLWithPath: Self.sipp!)
        uas.arguments = [
            "-sf", Self.scenarios.appendingPathComponent("uas-fork.xml").path, "-i", "127.0.0.1", "-p", "\(sipPort)",
            "-set", "media_port", "\(port)", "-set", "media_ip", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "30s",
        ]
        uas.currentDirectoryURL = service.directory
        uas.standardOutput = FileHandle.nullDevice
        uas.standardError = FileHandle.nullDevice
        try uas.run()
        defer { if uas.isRunning { uas.terminate() } }
        Thread.sleep(forTimeInterval: 0.5)

        let uac = Process()
        uac.executableURL = URL(fileURLWithPath: Self.sipp!)
        uac.arguments = [
            "127.0.0.1:\(sipPort)", "-sf", Self.scenarios.appendingPathComponent("uac-play-wav.xml").path,
            "-i", "127.0.0.1", "-p", "\(sipPort + 1)", "-mi", "127.0.0.1", "-m", "1", "-d", "5000", "-nostdin",
            "-timeout", "30s",
        ]
        uac.currentDirectoryURL = service.directory
        uac.standardOutput = FileHandle.nullDevice
        uac.standardError = FileHandle.nullDevice
        try uac.run()
        let deadline = Date().addingTimeInterval(30)
        while uac.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(!uac.isRunning && uac.terminationStatus == 0, "the sipp caller completed its call")

        _ = try service.json("DELETE", "/v1/legs/\(leg)")
        let ended = receiver.wait(seconds: 10) { events in events.contains { event in event.isLegEnd } }
        #expect(ended)
        let events = receiver.parsed
        let start = try #require(events.first { $0["type"] as? String == "leg.start" })
        #expect(start["codec"] as? String == "pcmu")
        #expect(events.filter { $0["type"] as? String == "emotion" }.count >= 2)
        let end = try #require(events.first { $0["type"] as? String == "leg.end" })
        let rtp = try #require(end["rtp"] as? [String: Any])
        // 4.7 s of audio in 20 ms packets.
        #expect((rtp["received"] as? Int ?? 0) >= 230)
        #expect(rtp["lost"] as? Int == 0)
        _ = service.terminate()
    }
}
