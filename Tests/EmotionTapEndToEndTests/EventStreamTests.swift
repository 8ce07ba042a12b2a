import EmotionProtocol
import EmotionTestSupport
import Foundation
import Testing

/// `curl -N` on an SSE URL in the background, its output collected as it arrives.
final class StreamClient: @unchecked Sendable {
    // `data` is appended by the pipe's reader and read by the test, under `lock`.
    private let lock = NSLock()
    private var data = Data()
    let process = Process()

    /// One SSE message: `event:`, `id:` and `data:` (nil when absent).
    struct Message {
        var event: String?
        var id: String?
        var data: String?
    }

    init(_ url: String, headers: [String] = [], maxSeconds: Int = 90, extra: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sN", "--max-time", "\(maxSeconds)"] + extra + headers.flatMap { ["-H", $0] } + [url]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            if chunk.isEmpty { handle.readabilityHandler = nil }
            self?.lock.withLock { self?.data.append(chunk) }
        }
        try process.run()
    }

    deinit { stop() }

    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }

    /// The complete messages so far (comments such as `: keep-alive` left out).
    var messages: [Message] {
        text.components(separatedBy: "\n\n").dropLast().compactMap { block in
            var m = Message()
            for line in block.split(separator: "\n", omittingEmptySubsequences: true) where !line.hasPrefix(":") {
                let (field, value) =
                    line.firstIndex(of: ":").map { (line[..<$0], line[line.index(after: $0)...]) } ?? (line[...], "")
                let v = String(value.hasPrefix(" ") ? value.dropFirst() : value)
                switch field {
                case "event": m.event = v
                case "id": m.id = v
                case "data": m.data = v
                default: break
                }
            }
            return m.event == nil && m.data == nil ? nil : m
        }
    }

    /// Polls (bounded) until `condition` holds on the text so far.
    func wait(seconds: Double, until condition: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(text) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return condition(text)
    }

    /// SIGKILL: a child spawned from a test thread inherits its blocked signals, SIGTERM included.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// `GET /v1/events/stream` from outside: `serve`, curl as the SSE client, `emotiontap send` as the RTP
/// source, the UDP datagrams as the reference.
@Suite("live event stream (SSE), black-box", .serialized)
struct EventStreamTests {

    func metric(_ service: ServiceProcess, _ name: String) throws -> Double? {
        try service.request("GET", "/metrics").1.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            .flatMap { Double($0.split(separator: " ")[1]) }
    }

    @Test(
        "every published event arrives as SSE (event: type, id: seq, data: the datagram); call and type filters keep only theirs; a quiet stream gets keep-alives; clients that go are unsubscribed; SIGTERM ends open streams"
    )
    func stream() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let token = "sse-\(UUID().uuidString)"
        // Keep-alives every 2 s (http.stream_keepalive_s) instead of 15: the test waits for one.
        let service = try ServiceProcess(eventPort: receiver.port, token: token, streamKeepAlive: 2)
        let base = "http://127.0.0.1:\(service.httpPort)/v1/events/stream"
        // All events, the token in the query as EventSource sends it.
        let all = try StreamClient("\(base)?token=\(token)")
        // One call's emotion and state events, the token as a header.
        let filtered = try StreamClient(
            "\(base)?call_id=sse-a&types=emotion,state", headers: ["Authorization: Bearer \(token)"])
        // Nothing passes this filter: only keep-alives (every 2 s here) come.
        let quiet = try StreamClient("\(base)?call_id=nobody&types=escalate&token=\(token)")
        defer { for c in [all, filtered, quiet] { c.stop() } }
        for c in [all, filtered, quiet] { #expect(c.wait(seconds: 10) { $0.contains(": connected\n\n") }) }
        #expect(try metric(service, "emotiontap_event_stream_clients") == 3)

        let a = try service.createLeg(call: "sse-a", role: "customer", codec: "pcmu")
        let b = try service.createLeg(call: "sse-b", role: "customer", codec: "pcmu")
        let senders = try [a.1, b.1].map { try startSampleCall(to: $0) }
        defer {
            for s in senders where s.isRunning {
                kill(s.processIdentifier, SIGKILL)
                s.waitUntilExit()
            }
        }
        #expect(filtered.wait(seconds: 25) { $0.components(separatedBy: "event: emotion\n").count > 4 })
        #expect(all.wait(seconds: 5) { $0.contains("\"call_id\":\"sse-b\"") && $0.contains("event: emotion\n") })

        // The reference: the datagrams, by seq.
        var datagrams: [String: String] = [:]
        for d in receiver.received { if let e = try? Event(decoding: d) { datagrams["\(e.sequence)"] = d } }
        let messages = all.messages
        #expect(messages.count >= 8)
        var lastSeq: Int64 = 0
        var types: Set<String> = []
        for m in messages {
            let data = try #require(m.data), id = try #require(m.id), event = try #require(m.event)
            let decoded = try Event(decoding: data)
            #expect(decoded.type == event && "\(decoded.sequence)" == id, "\(m)")
            #expect(decoded.sequence > lastSeq, "ids out of order: \(decoded.sequence) after \(lastSeq)")
            lastSeq = decoded.sequence
            types.insert(event)
            // What UDP receivers got, byte for byte (signature included), when it has arrived yet.
            if let datagram = datagrams[id] { #expect(datagram == data) }
            #expect(verifySignature(data, key: service.hmacKey))
        }
        #expect(types.isSuperset(of: ["leg.start", "emotion", "heartbeat"]), "\(types)")

        let kept = filtered.messages
        #expect(kept.count >= 4)
        for m in kept {
            let e = try Event(decoding: try #require(m.data))
            #expect(e.leg?.callID == "sse-a" && ["emotion", "state"].contains(e.type), "\(m)")
        }
        // Nothing of the call's that passes the filter is missing between the first and the last one kept.
        let keptSeqs = kept.compactMap { $0.id.flatMap(Int64.init) }
        let expected = receiver.events.filter {
            $0.leg?.callID == "sse-a" && ["emotion", "state"].contains($0.type)
                && (keptSeqs.first!...keptSeqs.last!).contains($0.sequence)
        }.map(\.sequence)
        #expect(keptSeqs == expected)

        #expect(quiet.wait(seconds: 20) { $0.contains(": keep-alive\n\n") }, "no keep-alive in 20 s")
        #expect(!quiet.text.contains("event:"))

        // Clients that go are unsubscribed at their next write: the next heartbeat for the first, the next
        // keep-alive (2 s here) for the filtered one once its call has nothing more to say.
        all.stop()
        filtered.stop()
        let deadline = Date().addingTimeInterval(20)
        while try metric(service, "emotiontap_event_stream_clients") != 1, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(try metric(service, "emotiontap_event_stream_clients") == 1)
        #expect(try metric(service, "emotiontap_event_stream_dropped_total") == 0)

        // SIGTERM with a stream open: the stream ends and the service exits as usual.
        #expect(service.terminate() == 0, "serve did not exit on SIGTERM with a stream open: \(service.stderrText)")
        let end = Date().addingTimeInterval(10)
        while quiet.process.isRunning, Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!quiet.process.isRunning && quiet.process.terminationStatus == 0, "curl still waiting on the stream")
    }

    @Test(
        "the stream and the page want the token like the rest of the API; ?token= is taken there only; unknown types are refused"
    )
    func token() throws {
        let token = "sse-\(UUID().uuidString)"
        let service = try ServiceProcess(eventPort: 9, token: token)
        #expect(try service.request("GET", "/v1/events/stream", token: .some(nil)).0 == 401)
        #expect(try service.request("GET", "/v1/events/stream?token=wrong", token: .some(nil)).0 == 401)
        #expect(try service.request("GET", "/", token: .some(nil)).0 == 401)
        #expect(try service.request("GET", "/v1/legs?token=\(token)", token: .some(nil)).0 == 401)
        let (badType, body) = try service.request("GET", "/v1/events/stream?types=emotion,nope&token=\(token)")
        #expect(badType == 400 && body.contains("unknown event type 'nope'"), "\(body)")

        let (pageStatus, page) = try service.request("GET", "/?token=\(token)", token: .some(nil))
        #expect(pageStatus == 200 && page.contains(#"id="status""#) && page.contains("new EventSource("))
        #expect(!page.contains("src=\"http") && !page.contains("href=\"http"), "the page loads nothing from elsewhere")

        let open = try StreamClient(
            "http://127.0.0.1:\(service.httpPort)/v1/events/stream?token=\(token)", maxSeconds: 3, extra: ["-i"])
        #expect(open.wait(seconds: 5) { $0.contains(": connected") })
        let head = open.text.lowercased()
        #expect(head.hasPrefix("http/1.1 200") && head.contains("content-type: text/event-stream"), "\(head)")
        _ = service.terminate()
    }
}
