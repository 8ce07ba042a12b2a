import EmotionProtocol
import EmotionTestSupport
import Foundation
import Testing

/// The call history from outside: `serve` with an SQLite store filled from its event log, a real
/// RTP sender, `kill -9`, a restart, and `emotiontap report` reading the store.
@Suite("call history", .serialized)
struct HistoryTests {

    /// Leg events in the log for `call`, by type.
    func logged(_ log: URL, call: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in try String(contentsOf: log, encoding: .utf8).split(separator: "\n") {
            guard let e = try? Event(decoding: String(line)), e.leg?.callID == call else { continue }
            counts[e.type, default: 0] += 1
        }
        return counts
    }

    @Test(
        "kill -9 mid-call loses no event that reached the log: the restart stores them all, the dead run's legs end as lost, and report shows the call by agent"
    )
    func crashAndReplay() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let dir = try TemporaryDirectory()
        let log = dir.url.appendingPathComponent("events.jsonl"), store = dir.url.appendingPathComponent("h.sqlite")
        let first = try ServiceProcess(eventPort: receiver.port, eventLog: log.path, historyStore: store.path)
        var senders: [Process] = []
        for role in ["customer", "agent"] {
            let (status, object) = try first.json(
                "POST", "/v1/legs",
                body:
                    #"{"call_id":"crash-call","role":"\#(role)","codec":"pcmu","agent_id":"agent-42","tags":{"queue":"billing"}}"#
            )
            #expect(status == 201)
            let port = try #require((object["rtp"] as? [String: Any])?["port"] as? Int)
            senders.append(try startSampleCall(to: port))
        }
        defer { for s in senders where s.isRunning { s.terminate() } }
        // Mid-call: some windows analysed on both legs, the sample call far from over.
        #expect(receiver.wait(seconds: 20) { $0.filter(\.isEmotion).count >= 6 })
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        for s in senders { s.terminate() }
        let before = try logged(log, call: "crash-call")
        #expect((before["emotion"] ?? 0) >= 6 && before["leg.start"] == 2 && before["leg.end"] == nil, "\(before)")

        // The restart replays the log from the stored position and closes the dead run's legs.
        let second = try ServiceProcess(eventPort: receiver.port, eventLog: log.path, historyStore: store.path)
        var csv = ""
        let deadline = Date().addingTimeInterval(15)
        repeat {
            Thread.sleep(forTimeInterval: 0.3)
            csv =
                (try? emotiontap(["report", "--call", "crash-call", "--format", "csv", "--store", store.path]).1) ?? ""
        } while csv.split(separator: "\r\n").count - 1 < before["emotion"] ?? 0 && Date() < deadline
        #expect(csv.split(separator: "\r\n").count - 1 == before["emotion"], "one CSV row per stored window:\n\(csv)")
        let (status, text, err) = try emotiontap(["report", "--call", "crash-call", "--store", store.path])
        #expect(status == 0, "\(err)")
        #expect(text.contains("lost") && text.contains("agent-42"), "\(text)")
        let (agentStatus, agent, _) = try emotiontap(["report", "--agent", "agent-42", "--store", store.path])
        #expect(agentStatus == 0 && agent.contains("crash-call"), "\(agent)")
        let (unknown, _, unknownErr) = try emotiontap(["report", "--call", "no-such-call", "--store", store.path])
        #expect(unknown == 2 && unknownErr.contains("no call no-such-call"), "\(unknownErr)")
        let metrics = try second.request("GET", "/metrics").1
        #expect(metrics.contains("emotiontap_history_events_stored_total"))
        _ = second.terminate()
    }

    @Test("a store file that is not SQLite stops serve at start with what to do, and is left as it was")
    func brokenStore() throws {
        let dir = try TemporaryDirectory()
        let junk = try dir.write("history.sqlite", Array("not a database, a note someone left here\n".utf8))
        let before = try Data(contentsOf: junk)
        #expect(throws: HarnessError.self) {
            _ = try ServiceProcess(eventPort: 9, historyStore: junk.path)
        }
        do { _ = try ServiceProcess(eventPort: 9, historyStore: junk.path) } catch {
            #expect("\(error)".contains("not an SQLite database") && "\(error)".contains("nothing was changed"))
        }
        #expect(try Data(contentsOf: junk) == before)
    }
}

/// Two instances of `serve` on one PostgreSQL server (Debian's, started by the test on loopback).
@Suite(
    "several instances, one PostgreSQL", .serialized,
    .enabled(
        if: PostgresServer.available,
        "PostgreSQL is not installed (Debian package postgresql; scripts/install-deps.sh installs it)"))
struct SharedStoreTests {
    @Test(
        "a call with its customer on one instance and its agent on another: GET /v1/calls on either covers both legs, and the report has both"
    )
    func twoInstances() throws {
        let server = try PostgresServer(band: .blackBox)
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let a = try ServiceProcess(eventPort: receiver.port, historyStore: server.url, historyInstance: "tap-a")
        let b = try ServiceProcess(eventPort: receiver.port, historyStore: server.url, historyInstance: "tap-b")
        var senders: [Process] = []
        defer { for s in senders where s.isRunning { s.terminate() } }
        var legs: [(ServiceProcess, String)] = []
        for (service, role) in [(a, "customer"), (b, "agent")] {
            let (status, object) = try service.json(
                "POST", "/v1/legs",
                body: #"{"call_id":"shared-call","role":"\#(role)","codec":"pcmu","agent_id":"agent-7"}"#)
            #expect(status == 201)
            let port = try #require((object["rtp"] as? [String: Any])?["port"] as? Int)
            legs.append((service, try #require(object["leg_id"] as? String)))
            senders.append(try startSampleCall(to: port))
        }
        // Both legs have media and are in the store once each instance's ingestor has caught up.
        var seen: [String: [[String: Any]]] = [:]
        let deadline = Date().addingTimeInterval(20)
        repeat {
            Thread.sleep(forTimeInterval: 0.5)
            for (name, service) in [("a", a), ("b", b)] {
                seen[name] = (try? service.json("GET", "/v1/calls/shared-call").1["legs"] as? [[String: Any]]) ?? []
            }
        } while (seen["a"]?.count ?? 0) < 2 || (seen["b"]?.count ?? 0) < 2 ? Date() < deadline : false
        for (name, other) in [("a", "tap-b"), ("b", "tap-a")] {
            let legsSeen = seen[name] ?? []
            #expect(legsSeen.count == 2, "instance \(name): \(legsSeen)")
            let remote = legsSeen.first { $0["remote"] as? Bool == true }
            #expect(remote?["instance"] as? String == other, "instance \(name) sees the other's leg: \(legsSeen)")
            #expect(remote?["agent_id"] as? String == "agent-7")
        }
        #expect(try a.request("GET", "/v1/calls/shared-call?format=text&field=legs").1 == "2")
        for (service, id) in legs { _ = try service.request("DELETE", "/v1/legs/\(id)") }
        for s in senders { s.terminate() }
        // Ended on both: the report from the shared store lists both legs and both instances.
        var report = ""
        let until = Date().addingTimeInterval(15)
        repeat {
            Thread.sleep(forTimeInterval: 0.5)
            report = (try? emotiontap(["report", "--call", "shared-call", "--store", server.url]).1) ?? ""
        } while report.components(separatedBy: " api ").count < 3 && Date() < until
        #expect(report.components(separatedBy: " api ").count == 3, "both legs ended (reason api):\n\(report)")
        #expect(try a.request("GET", "/v1/calls/shared-call").0 == 404)
        _ = a.terminate()
        _ = b.terminate()
    }
}

@Suite(
    "the HTML report in a browser",
    .enabled(
        if: HeadlessChromium.executable != nil,
        "chromium is not on the PATH (scripts/install-deps.sh installs Debian's package): browser test skipped"))
struct ReportInBrowserTests {
    @Test(
        "report --format html from a stored call renders in headless Chromium: a timeline per leg with its line, no script, nothing fetched"
    )
    func htmlReport() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let dir = try TemporaryDirectory()
        let store = dir.url.appendingPathComponent("h.sqlite")
        let service = try ServiceProcess(eventPort: receiver.port, historyStore: store.path)
        var legs: [String] = []
        for role in ["customer", "agent"] {
            let (status, object) = try service.json(
                "POST", "/v1/legs", body: #"{"call_id":"html-call","role":"\#(role)","codec":"pcmu","agent_id":"a-1"}"#)
            #expect(status == 201)
            let port = try #require((object["rtp"] as? [String: Any])?["port"] as? Int)
            legs.append(try #require(object["leg_id"] as? String))
            let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 3, into: dir.url)
            #expect(try emotiontap(["send", clip.path, "--to", "127.0.0.1:\(port)", "--fast"]).0 == 0)
        }
        Thread.sleep(forTimeInterval: 0.5)
        for id in legs { _ = try service.request("DELETE", "/v1/legs/\(id)") }
        let page = dir.url.appendingPathComponent("call.html")
        let deadline = Date().addingTimeInterval(15)
        var rendered = false
        repeat {
            Thread.sleep(forTimeInterval: 0.3)
            rendered =
                (try? emotiontap([
                    "report", "--call", "html-call", "--format", "html", "--store", store.path, "-o", page.path,
                ]).0) == 0
                && ((try? String(contentsOf: page, encoding: .utf8)) ?? "").components(
                    separatedBy: "class=\"timeline\""
                )
                .count == 3
        } while !rendered && Date() < deadline
        #expect(rendered, "the report was written with both legs' timelines")
        let html = try String(contentsOf: page, encoding: .utf8)
        #expect(!html.contains("<script") && !html.contains("http:") && !html.contains("https:"))

        let browser = try HeadlessChromium(executable: try #require(HeadlessChromium.executable))
        defer { browser.close() }
        let tab = try browser.open(page.absoluteString)
        var dom = ""
        let loaded = Date().addingTimeInterval(10)
        repeat {
            Thread.sleep(forTimeInterval: 0.3)
            dom = (try? browser.dumpDOM(tab)) ?? ""
        } while !dom.contains("html-call") && Date() < loaded
        // What the browser built from the page: both legs' SVG timelines with their upset lines.
        #expect(dom.components(separatedBy: "class=\"timeline\"").count == 3, "\(dom.prefix(3000))")
        #expect(dom.contains("<polyline") && dom.contains("upset-line"))
        #expect(dom.contains("a-1") && dom.contains("customer") && dom.contains("agent"))
        let png = try browser.screenshot(tab)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "a PNG of the rendered report")
        _ = service.terminate()
    }
}
