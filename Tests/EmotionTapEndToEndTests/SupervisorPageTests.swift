import EmotionTestSupport
import Foundation
import Testing

/// The supervisor page (`GET /`) in a real headless browser: Debian's Chromium against `serve`, with
/// the sample call streamed to a call's two legs by `emotiontap send`.
@Suite("supervisor page in headless Chromium", .serialized)
struct SupervisorPageTests {

    /// `data-points` of leg `leg`'s timeline in a dump, or nil when the page has none for it.
    static func points(_ dom: String, leg: String) -> Int? {
        guard let r = dom.range(of: #"data-leg="\#(leg)" data-points=""#) else { return nil }
        return Int(dom[r.upperBound...].prefix { $0.isNumber })
    }

    /// The attributes of leg `leg`'s row (`<div class="leg" data-leg=...>`), or "" when it has none.
    static func legRow(_ dom: String, leg: String) -> Substring {
        guard let r = dom.range(of: #"<div class="leg" data-leg="\#(leg)""#) else { return "" }
        return dom[r.lowerBound...].prefix { $0 != ">" }
    }

    static func isLive(_ dom: String) -> Bool { dom.contains(#"<span id="status" data-state="live">live</span>"#) }

    @Test(
        "the page opened with ?token= goes live, shows the call with both legs, its timelines grow between two DOM dumps, and an ended leg greys out",
        .enabled(
            if: HeadlessChromium.executable != nil,
            "chromium is not on the PATH (scripts/install-deps.sh installs Debian's package): browser test skipped")
    )
    func liveCall() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let token = "page-\(UUID().uuidString)"
        let service = try ServiceProcess(eventPort: receiver.port, token: token)
        defer { _ = service.terminate() }
        let call = "supervised-call"
        let customer = try service.createLeg(call: call, role: "customer", codec: "pcmu")
        let agent = try service.createLeg(call: call, role: "agent", codec: "pcmu")
        let senders = try [customer.1, agent.1].map { try startSampleCall(to: $0) }
        defer {
            // SIGKILL: a child spawned from a test thread inherits its blocked signals, SIGTERM included.
            for s in senders where s.isRunning {
                kill(s.processIdentifier, SIGKILL)
                s.waitUntilExit()
            }
        }
        // The page opens mid-call: its legs come from /v1/legs, its points from the stream.
        #expect(receiver.wait(seconds: 20) { $0.filter(\.isEmotion).count >= 2 })

        let browser = try HeadlessChromium(executable: try #require(HeadlessChromium.executable))
        defer { browser.close() }
        let page = try browser.open("http://127.0.0.1:\(service.httpPort)/?token=\(token)")
        var first = ""
        for _ in 0..<60 {
            Thread.sleep(forTimeInterval: 0.25)
            first = try browser.dumpDOM(page)
            if Self.isLive(first), (Self.points(first, leg: customer.0) ?? 0) > 0 { break }
        }
        #expect(Self.isLive(first), "#status is not live:\n\(first.prefix(3000))")
        #expect(first.contains(#"<div class="call" data-call="\#(call)""#))
        let before = try #require(Self.points(first, leg: customer.0), "no timeline for the customer's leg")
        #expect(before > 0)

        Thread.sleep(forTimeInterval: 4)
        let second = try browser.dumpDOM(page)
        #expect(Self.isLive(second))
        #expect(second.contains(#"<div class="call" data-call="\#(call)""#))
        let after = try #require(Self.points(second, leg: customer.0))
        #expect(after > before, "the customer's timeline did not move: \(before) then \(after) points")
        #expect((Self.points(second, leg: agent.0) ?? 0) > 0, "the agent's timeline is empty")
        for leg in [customer.0, agent.0] {
            let row = Self.legRow(second, leg: leg)
            #expect(row.contains(#"data-state="calm""#) || row.contains(#"data-state="upset""#), "\(row)")
        }

        let png = try browser.screenshot(page)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000, "\(png.count) bytes")
        let shot = service.directory.appendingPathComponent("supervisor-view.png")
        try png.write(to: shot)
        // `SUPERVISOR_SCREENSHOT=docs/supervisor-view.png swift test ...` keeps a copy (the one in docs/).
        if let keep = ProcessInfo.processInfo.environment["SUPERVISOR_SCREENSHOT"] {
            try png.write(to: URL(fileURLWithPath: keep, relativeTo: Repo.root))
        }

        // leg.end: the agent's row stays, greyed, for the page's 30 s.
        #expect(try service.request("DELETE", "/v1/legs/\(agent.0)").0 == 200)
        var ended = ""
        for _ in 0..<40 {
            Thread.sleep(forTimeInterval: 0.25)
            ended = try browser.dumpDOM(page)
            if Self.legRow(ended, leg: agent.0).contains(#"data-ended="1""#) { break }
        }
        #expect(Self.legRow(ended, leg: agent.0).contains(#"data-ended="1""#), "\(Self.legRow(ended, leg: agent.0))")
        #expect(!Self.legRow(ended, leg: customer.0).contains(#"data-ended="1""#))
    }
}
