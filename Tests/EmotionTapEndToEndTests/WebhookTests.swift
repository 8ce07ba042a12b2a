import EmotionProtocol
import EmotionTestSupport
import Foundation
import Testing

/// A webhook receiver on a loopback port: plain HTTP/1.1 on a socket, answering 500 to the first
/// `failFirst` requests and 204 after, recording every request it took.
final class HookReceiver: @unchecked Sendable {
    struct Request {
        let path: String
        let headers: [String: String]
        let body: String
    }

    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var requests: [Request] = []
    private var failuresLeft: Int
    private var thread: Thread?
    private var stopping = false

    init(failFirst: Int) throws {
        failuresLeft = failFirst
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw HarnessError("cannot listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        let t = Thread { [self] in serve() }
        thread = t
        t.start()
    }

    var received: [Request] { lock.withLock { requests } }

    func stop() {
        lock.withLock { stopping = true }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    private func serve() {
        while !lock.withLock({ stopping }) {
            let client = accept(fd, nil, nil)
            guard client >= 0 else { return }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            // One request per connection is enough here; the answer closes it.
            var data = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 65536)
            var request: Request?
            while request == nil {
                let n = read(client, &buffer, buffer.count)
                if n <= 0 { break }
                data += buffer[0..<n]
                request = Self.parse(data)
            }
            if let request {
                let fail = lock.withLock { () -> Bool in
                    requests.append(request)
                    defer { failuresLeft -= 1 }
                    return failuresLeft > 0
                }
                let answer =
                    fail
                    ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    : "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
                _ = answer.withCString { write(client, $0, strlen($0)) }
            }
            close(client)
        }
    }

    /// A whole request (head and a Content-Length body), or nil when more bytes are needed.
    static func parse(_ data: [UInt8]) -> Request? {
        let text = String(decoding: data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<split.lowerBound].components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        let body = String(text[split.upperBound...])
        guard body.utf8.count >= Int(headers["content-length"] ?? "0") ?? 0 else { return nil }
        let path = head.first?.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        return Request(path: path, headers: headers, body: body)
    }
}

@Suite("webhooks")
struct WebhookTests {
    @Test(
        "leg.end is POSTed to the webhook, signed like the datagrams, retried with backoff through two failures; the leg is never held up"
    )
    func retriedAndSigned() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let hook = try HookReceiver(failFirst: 2)
        defer { hook.stop() }
        let service = try ServiceProcess(
            eventPort: receiver.port,
            extraConfig: """
                webhooks:
                  - {url: "http://127.0.0.1:\(hook.port)/emotiontap", events: [leg.end], timeout_s: 2, max_attempts: 5}
                """)
        let (leg, port) = try service.createLeg(call: "hooked-call", role: "customer", codec: "pcmu")
        let clip = Fixtures.url(Fixtures.clips[0]).path
        #expect(try emotiontap(["send", clip, "--to", "127.0.0.1:\(port)", "--fast"]).0 == 0)
        Thread.sleep(forTimeInterval: 0.5)
        let ended = Date()
        #expect(try service.request("DELETE", "/v1/legs/\(leg)").0 == 200)
        #expect(Date().timeIntervalSince(ended) < 2, "ending the leg does not wait for the webhook")
        #expect(receiver.wait(seconds: 5) { $0.contains(where: \.isLegEnd) })
        // 500, 500 (after 1 s), then delivered (after 2 s more).
        let deadline = Date().addingTimeInterval(15)
        while hook.received.count < 3, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        let requests = hook.received
        #expect(requests.count == 3, "\(requests.map(\.path))")
        let last = try #require(requests.last)
        #expect(last.path == "/emotiontap" && last.headers["content-type"] == "application/json")
        let event = try Event(decoding: last.body)
        #expect(event.type == "leg.end" && event.leg?.callID == "hooked-call")
        let signer = EventSigner(key: service.hmacKey)
        #expect(signer.verify(last.body), "the body carries the datagram's own signature")
        #expect(last.headers["x-emotiontap-signature"] == "sha256=" + signer.signature(ofBody: last.body))
        let metrics = try service.request("GET", "/metrics").1
        #expect(metrics.contains(#"emotiontap_webhook_deliveries_total{result="delivered"} 1"#), "\(metrics)")
        #expect(metrics.contains("emotiontap_webhook_attempts_total 3"))
        _ = service.terminate()
    }

    @Test("a webhook URL that is not http(s), or an unknown event type, is refused at start with the key")
    func badConfig() throws {
        for (yaml, expected) in [
            ("webhooks: [{url: \"ftp://x/y\"}]", "webhooks[0].url"),
            ("webhooks: [{url: \"http://127.0.0.1:1/\", events: [heartbeats]}]", "'heartbeats' is not an event type"),
        ] {
            #expect(throws: HarnessError.self) { _ = try ServiceProcess(eventPort: 9, extraConfig: yaml) }
            do { _ = try ServiceProcess(eventPort: 9, extraConfig: yaml) } catch {
                #expect("\(error)".contains(expected))
            }
        }
    }
}
