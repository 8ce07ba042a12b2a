import EmotionCore
import EmotionProtocol
import EmotionTestSupport
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// `emotiontap serve` as a child process on loopback, with its own ports, log and key.
final class ServiceProcess {
    let process = Process()
    let httpPort: Int
    let rtpPorts: ClosedRange<Int>
    let directory: URL
    let logPath: URL
    let hmacKey = "test-key-\(UUID().uuidString)"
    let token: String?
    private let errorPipe = Pipe()
    /// Everything serve wrote to stderr so far, read as it comes: a pipe nobody drains would block a
    /// crashing serve's backtracer (and with it the test) once it fills.
    private let errors = ErrorBuffer()

    /// `maxDelayMilliseconds`: 30 s, not the service's 2 s: these tests run a debug build beside the
    /// other test phases on a busy machine, where a 2 s deadline sheds audio the checks count on.
    /// Shedding is tested where it is the subject (OverloadTests, tools/overload_check.sh).
    init(
        eventPort: Int, rtpPortCount: Int = 20, token: String? = nil, legTimeout: Double = 30, staticLeg: Bool = false,
        maxLegs: Int = 2000, eventLog: String? = nil, jitterBufferMilliseconds: Int = 0,
        maxDelayMilliseconds: Int = 30_000,
        policy: String? = nil, extraConfig: String? = nil, historyStore: String? = nil,
        historyInstance: String = "e2e", streamKeepAlive: Double = 15
    ) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("emotiontap-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        httpPort = try Self.freeTCPPort()
        rtpPorts = TestPorts.block(rtpPortCount, band: .blackBox)
        logPath = eventLog.map { URL(fileURLWithPath: $0) } ?? directory.appendingPathComponent("events.jsonl")
        self.token = token
        let staticLegs =
            staticLeg ? "[{port: \(rtpPorts.upperBound), call_id: static-call, role: customer, codec: pcmu}]" : "[]"
        let config = """
            http: {host: 127.0.0.1, port: \(httpPort), stream_keepalive_s: \(streamKeepAlive)}
            auth_token: \(token ?? "null")
            rtp:
              host: 127.0.0.1
              ports: "\(rtpPorts.lowerBound)-\(rtpPorts.upperBound)"
              leg_timeout_s: \(legTimeout)
              max_legs: \(maxLegs)
              jitter_buffer_ms: \(jitterBufferMilliseconds)
              max_delay_ms: \(maxDelayMilliseconds)
            events: {targets: ["127.0.0.1:\(eventPort)"], hmac_key: \(hmacKey), log: \(logPath.path), heartbeat_s: 1}
            static_legs: \(staticLegs)
            history: {store: "\(historyStore ?? directory.appendingPathComponent("history.sqlite").path)", instance: \(historyInstance)}
            """ + (policy.map { "\npolicy: \($0)" } ?? "") + (extraConfig.map { "\n" + $0 } ?? "")
        let configURL = directory.appendingPathComponent("config.yaml")
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        process.executableURL = Repo.executable
        process.arguments = ["serve", "--config", configURL.path, "--log-level", "warning"]
        process.standardError = errorPipe
        let sink = errors
        errorPipe.fileHandleForReading.readabilityHandler = { handle in sink.append(handle.availableData) }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Ready when /healthz answers (bounded).
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let (status, _) = try? request("GET", "/healthz"), status == 200 { return }
            guard process.isRunning else { throw HarnessError("serve exited early: \(stderrText)") }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw HarnessError("serve did not answer /healthz in 20 s")
    }

    var stderrText: String {
        // What has arrived, after a moment for the last of it.
        Thread.sleep(forTimeInterval: 0.2)
        return errors.text
    }

    deinit {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        errorPipe.fileHandleForReading.readabilityHandler = nil
        try? FileManager.default.removeItem(at: directory)
    }

    /// A synchronous HTTP request (curl keeps this free of URLSession's Linux quirks).
    func request(
        _ method: String, _ path: String, body: String? = nil, token overrideToken: String?? = nil
    ) throws -> (Int, String) {
        var args = [
            "-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}", "-X", method, "http://127.0.0.1:\(httpPort)\(path)",
        ]
        if let body { args += ["-H", "Content-Type: application/json", "--data-binary", body] }
        let bearer = overrideToken ?? token
        if let bearer { args += ["-H", "Authorization: Bearer \(bearer)"] }
        let text = try run(URL(fileURLWithPath: "/usr/bin/curl"), args, timeout: 10).stdout
        guard let newline = text.lastIndex(of: "\n"), let status = Int(text[text.index(after: newline)...]) else {
            throw HarnessError("no HTTP answer for \(method) \(path)")
        }
        return (status, String(text[..<newline]))
    }

    func json(_ method: String, _ path: String, body: String? = nil) throws -> (Int, [String: Any]) {
        let (status, text) = try request(method, path, body: body)
        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
        return (status, object)
    }

    /// Creates a leg; returns (leg id, RTP port).
    func createLeg(call: String, role: String, codec: String? = nil) throws -> (String, Int) {
        let codecField = codec.map { ",\"codec\":\"\($0)\"" } ?? ""
        let (status, object) = try json(
            "POST", "/v1/legs", body: "{\"call_id\":\"\(call)\",\"role\":\"\(role)\"\(codecField)}")
        guard status == 201, let id = object["leg_id"] as? String, let rtp = object["rtp"] as? [String: Any],
            let port = rtp["port"] as? Int
        else {
            throw HarnessError("POST /v1/legs answered \(status): \(object)")
        }
        return (id, port)
    }

    /// SIGINT (Ctrl-C), then wait (bounded) for exit; returns the exit status.
    func interrupt(within seconds: Double = 15) -> Int32? {
        process.interrupt()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// SIGTERM, then wait (bounded) for exit; returns the exit status.
    func terminate(within seconds: Double = 15) -> Int32? {
        process.terminate()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return process.isRunning ? nil : process.terminationStatus
    }

    static func freeTCPPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// The event signature check a consumer makes.
func verifySignature(_ datagram: String, key: String) -> Bool { EventSigner(key: key).verify(datagram) }

/// Bytes from a child's stderr, appended on the pipe's reader thread, read on the test's.
final class ErrorBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ chunk: Data) { lock.withLock { if data.count < 1 << 20 { data.append(chunk) } } }
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}

/// The bundled sample call (26 s: calm, then angry), as the demo streams it.
let sampleCall = Repo.root.appendingPathComponent("config/samples/sample-call.wav")

/// `emotiontap send` streaming the sample call in real time to a leg's port; the caller stops it.
func startSampleCall(to port: Int) throws -> Process {
    let p = Process()
    p.executableURL = Repo.executable
    p.arguments = ["send", sampleCall.path, "--to", "127.0.0.1:\(port)"]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    return p
}
