import EmotionTestSupport
import Foundation
import Testing

/// `emotiontap top` from outside: a real `serve` on loopback, legs created over the API, RTP from
/// `emotiontap send`, and the snapshot `top --once` prints.
@Suite("emotiontap top", .serialized)
struct TopTests {

    /// POST /v1/legs with an agent id; returns the RTP port.
    func createLeg(_ service: ServiceProcess, call: String, role: String, agent: String = "agent-9") throws -> Int {
        let (status, object) = try service.json(
            "POST", "/v1/legs",
            body: #"{"call_id":"\#(call)","role":"\#(role)","codec":"pcmu","agent_id":"\#(agent)"}"#)
        let port = (object["rtp"] as? [String: Any])?["port"] as? Int
        guard status == 201, let port else { throw HarnessError("POST /v1/legs answered \(status): \(object)") }
        return port
    }

    /// Waits (bounded) until the service has counted all `sent` packets for the leg of `call` and `role`.
    func waitForPackets(_ service: ServiceProcess, call: String, role: String, sent: Int) throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let legs = try service.json("GET", "/v1/legs").1["legs"] as? [[String: Any]] ?? []
            let leg = legs.first { $0["call_id"] as? String == call && $0["role"] as? String == role }
            let rtp = leg?["rtp"] as? [String: Any]
            if rtp?["received"] as? Int == sent { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw HarnessError("the \(role) leg did not count \(sent) packets in 10 s")
    }

    /// The table's rows: the lines after the column titles.
    func rows(_ stdout: String) -> [String] {
        Array(stdout.split(separator: "\n").map(String.init).drop { !$0.hasPrefix("CALL ") }.dropFirst())
    }

    @Test("--once: a header with the totals, one aligned row per leg with agent, codec, packets and loss")
    func snapshot() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let service = try ServiceProcess(eventPort: receiver.port)
        let customerPort = try createLeg(service, call: "top-call", role: "customer")
        _ = try createLeg(service, call: "top-call", role: "agent")
        let longCall = "a-call-id-far-longer-than-the-column-0123456789"
        _ = try createLeg(service, call: longCall, role: "customer", agent: "an-agent-id-longer-than-twelve")
        let send = try runEmotionTap(["send", sampleCall.path, "--to", "127.0.0.1:\(customerPort)", "--fast"])
        #expect(send.status == 0, "\(send.stderr)")
        // "send: N packets to ..."
        let received = try #require(Int(send.stderr.split(separator: " ").dropFirst().first ?? ""), "\(send.stderr)")
        #expect(received > 0)
        try waitForPackets(service, call: "top-call", role: "customer", sent: received)

        let api = "http://127.0.0.1:\(service.httpPort)"
        let top = try runEmotionTap(["top", "--once", "--api", api], timeout: 20)
        #expect(top.status == 0, "\(top.stderr)")
        #expect(!top.stdout.contains("\u{1b}"), "no escape codes when stdout is not a terminal")
        let lines = top.stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.first)
        #expect(header.contains("legs 3 active") && header.contains("packets \(received) received"), "\(header)")
        let rows = rows(top.stdout)
        #expect(rows.count == 3, "\(top.stdout)")
        // Aligned: the titles and every row the same width, within 120 columns.
        let titles = try #require(lines.first { $0.hasPrefix("CALL ") })
        #expect(rows.allSatisfy { $0.count == titles.count } && titles.count <= 120, "\(top.stdout)")

        let customer = try #require(rows.first { $0.hasPrefix("top-call ") && $0.contains("customer") })
        let agent = try #require(rows.first { $0.hasPrefix("top-call ") && $0.contains(" agent ") })
        #expect(customer.contains("agent-9") && agent.contains("agent-9"))
        #expect(customer.contains("pcmu"))
        // The last four cells: received, lost, loss %, media seconds.
        let cells = customer.split(separator: " ")
        #expect(Int(cells[cells.count - 4]) == received, "\(customer)")
        #expect(cells[cells.count - 2].hasSuffix("%") && cells[cells.count - 1].hasSuffix("s"))
        #expect(Int(agent.split(separator: " ").dropLast(3).last ?? "") == 0, "\(agent)")
        // Long ids are cut with an ellipsis.
        let long = try #require(rows.first { $0.hasPrefix("a-call-id") })
        #expect(long.contains("…") && !long.contains(longCall) && !long.contains("an-agent-id-longer"), "\(long)")
        // Before any reading the agent leg has no upset value; sorted by upset, it comes after the customer.
        let upsetOrder = rows.firstIndex(of: customer).map { $0 < (rows.firstIndex(of: agent) ?? 0) }
        #expect(upsetOrder == true, "\(top.stdout)")

        // --call filters, --sort call orders by call id then role.
        let filtered = try runEmotionTap(["top", "--once", "--api", api, "--call", "top-call", "--sort", "call"])
        #expect(filtered.status == 0)
        let filteredRows = self.rows(filtered.stdout)
        #expect(filteredRows.count == 2 && filteredRows[0].contains(" agent ") && filteredRows[1].contains("customer"))
        #expect(filtered.stdout.split(separator: "\n").first?.contains("legs 2 active") == true)
        let none = try runEmotionTap(["top", "--once", "--api", api, "--call", "no-such-call"])
        #expect(none.status == 0 && none.stdout.contains("(no active legs for call no-such-call)"))
        _ = service.terminate()
    }

    @Test("an unreachable API: --once exits 2 with one line naming it; the loop keeps waiting, Ctrl-C exits 0")
    func unreachable() throws {
        let api = "http://127.0.0.1:\(try ServiceProcess.freeTCPPort())"
        let once = try runEmotionTap(["top", "--once", "--api", api], timeout: 20)
        #expect(once.status == 2)
        #expect(once.stdout.isEmpty)
        let errors = once.stderr.split(separator: "\n")
        #expect(errors.count == 1 && errors[0].hasPrefix("emotiontap: ") && errors[0].contains(api), "\(once.stderr)")

        let loop = Process()
        loop.executableURL = Repo.executable
        loop.arguments = ["top", "--api", api, "--interval", "0.2"]
        let out = Pipe()
        loop.standardOutput = out
        loop.standardError = FileHandle.nullDevice
        try loop.run()
        Thread.sleep(forTimeInterval: 1.5)
        loop.interrupt()
        let deadline = Date().addingTimeInterval(5)
        while loop.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if loop.isRunning { loop.terminate() }
        loop.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(loop.terminationStatus == 0)
        #expect(text.components(separatedBy: "waiting for the service at \(api)").count > 2, "\(text)")
    }

    @Test("a token on the API: without one status 2 and what to do, with --token or EMOTIONTAP_TOKEN the table")
    func token() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let service = try ServiceProcess(eventPort: receiver.port, token: "top-secret")
        _ = try createLeg(service, call: "guarded", role: "customer")
        let api = "http://127.0.0.1:\(service.httpPort)"

        let without = try runEmotionTap(["top", "--once", "--api", api], timeout: 20)
        #expect(without.status == 2)
        #expect(
            without.stderr == "emotiontap: the API needs a token (--token or EMOTIONTAP_TOKEN)\n", "\(without.stderr)")
        let wrong = try runEmotionTap(["top", "--once", "--api", api, "--token", "nope"], timeout: 20)
        #expect(wrong.status == 2 && wrong.stderr.contains("refused the token"), "\(wrong.stderr)")

        let with = try runEmotionTap(["top", "--once", "--api", api, "--token", "top-secret"], timeout: 20)
        #expect(with.status == 0, "\(with.stderr)")
        #expect(with.stdout.split(separator: "\n").first?.contains("legs 1 active") == true, "\(with.stdout)")
        #expect(rows(with.stdout).first?.hasPrefix("guarded ") == true)

        let environment = try run(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["EMOTIONTAP_TOKEN=top-secret", Repo.executable.path, "top", "--once", "--api", api], timeout: 20)
        #expect(environment.status == 0 && environment.stdout.contains("guarded"), "\(environment.stderr)")
        _ = service.terminate()
    }
}
