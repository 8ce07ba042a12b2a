import EmotionRTP
import Crypto
import Foundation
import Logging
import Metrics

/// Publishes protocol-v1 events: numbers them, stamps them, signs them (HMAC-SHA256, optional),
/// sends each as one UDP datagram to every target and appends it to a size-rotated JSONL log.
///
/// Called from the RTP workers and the API; a lock keeps `seq` strictly increasing and the log in
/// order. Sends are non-blocking: a receiver that is down or slow never holds up a leg.
public final class EventPublisher: @unchecked Sendable {
    // All mutable state is guarded by `lock`.
    private let lock = NSLock()
    private var sequence: Int64 = 0
    private let targets: [UDPTarget]
    private let key: SymmetricKey?
    private let log: RotatingLog?
    private let logger: Logger
    private let socket: Int32
    private let formatter: ISO8601DateFormatter
    private let sent = Counter(label: "emotiontap_events_sent_total")
    private let sendErrors = Counter(label: "emotiontap_event_send_errors_total")
    private let logErrors = Counter(label: "emotiontap_event_log_errors_total")
    /// 1 while writes to the event log fail (disk full, file gone), else 0.
    private let logFailing = Gauge(label: "emotiontap_event_log_failing")
    private var failedLogWrites = 0
    /// Largest datagram we send; the protocol promises under 1,200 bytes.
    public static let maxDatagram = 1199

    public init(targets: [UDPTarget], hmacKey: String?, logPath: String?, logMaxBytes: Int, logKeep: Int, logger: Logger) throws {
        self.targets = targets
        key = hmacKey.map { SymmetricKey(data: Data($0.utf8)) }
        log = try logPath.map { try RotatingLog(path: $0, maxBytes: logMaxBytes, keep: logKeep) }
        self.logger = logger
        socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        if socket >= 0 {
            let flags = fcntl(socket, F_GETFL, 0)
            _ = fcntl(socket, F_SETFL, flags | O_NONBLOCK)
        }
        formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        if log != nil { logFailing.record(0) }
    }

    deinit { if socket >= 0 { close(socket) } }

    /// Publishes one event: `type` plus its own fields after the common header. Returns the datagram.
    @discardableResult
    public func publish(type: String, leg: LegIdentity?, fields: [(String, JSON)]) -> String {
        lock.lock()
        defer { lock.unlock() }
        sequence += 1
        var object: [(String, JSON)] = [("v", 1), ("type", .string(type)), ("seq", .int(sequence)),
                                        ("ts", .string(formatter.string(from: Date())))]
        if let leg {
            object += [("call_id", .string(leg.callID)), ("leg_id", .string(leg.legID)), ("role", .string(leg.role))]
        }
        object += fields
        var text = JSON.object(object).serialized
        if let key {
            // The signature covers the event exactly as serialised without it.
            let mac = HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)
            let hex = mac.map { String(format: "%02x", $0) }.joined()
            text.removeLast()
            text += ",\"sig\":\"\(hex)\"}"
        }
        if text.utf8.count > Self.maxDatagram {
            logger.warning("event over the datagram limit", metadata: ["event.type": "\(type)", "bytes": "\(text.utf8.count)"])
        }
        for target in targets { send(text, to: target) }
        if let log {
            do {
                try log.append(text)
                if failedLogWrites > 0 {
                    logger.notice("the event log is writable again", metadata: ["log.path": "\(log.path)", "failed_writes": "\(failedLogWrites)"])
                    failedLogWrites = 0
                    logFailing.record(0)
                }
            } catch {
                logErrors.increment()
                // Warn once per outage (a full disk fails every write): the metrics carry the count.
                if failedLogWrites == 0 {
                    logger.warning("cannot write the event log; events still go out over UDP, failed writes are counted in emotiontap_event_log_errors_total",
                                   metadata: ["log.path": "\(log.path)", "error": "\(error)"])
                    logFailing.record(1)
                }
                failedLogWrites += 1
            }
        }
        sent.increment()
        return text
    }

    private func send(_ text: String, to target: UDPTarget) {
        var address = target.address
        let result = text.utf8CString.withUnsafeBufferPointer { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(socket, buffer.baseAddress, buffer.count - 1, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        // ECONNREFUSED (an earlier ICMP port unreachable) or EAGAIN: the event stays in the log.
        if result < 0 { sendErrors.increment() }
    }

    public func flush() {
        lock.lock()
        defer { lock.unlock() }
        try? log?.flush()
    }
}

/// An IPv4 UDP destination, "host:port".
public struct UDPTarget: Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int
    let address: sockaddr_in

    public init(_ text: String) throws(ConfigError) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else {
            throw ConfigError("event target '\(text)' is not host:port")
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        let host = parts[0] == "localhost" ? "127.0.0.1" : String(parts[0])
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            throw ConfigError("event target '\(text)': '\(host)' is not an IPv4 address")
        }
        self.host = host
        self.port = port
        address = addr
    }

    public var description: String { "\(host):\(port)" }
}

/// Appends lines to a file, rotating to `.1`, `.2`... when it passes `maxBytes`.
final class RotatingLog {
    let path: String
    let maxBytes: Int
    let keep: Int
    private var handle: FileHandle
    private var size: Int

    init(path: String, maxBytes: Int, keep: Int) throws {
        self.path = path
        self.maxBytes = maxBytes
        self.keep = keep
        (handle, size) = try Self.open(path)
    }

    private static func open(_ path: String) throws -> (FileHandle, Int) {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw ConfigError("cannot create event log \(path)")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw ConfigError("cannot open event log \(path)") }
        let end = try h.seekToEnd()
        return (h, Int(end))
    }

    func append(_ line: String) throws {
        let data = Data((line + "\n").utf8)
        try handle.write(contentsOf: data)
        size += data.count
        if size >= maxBytes { try rotate() }
    }

    func flush() throws { try handle.synchronize() }

    private func rotate() throws {
        try handle.close()
        let fm = FileManager.default
        for i in stride(from: keep - 1, through: 1, by: -1) {
            let from = "\(path).\(i)", to = "\(path).\(i + 1)"
            if fm.fileExists(atPath: from) {
                try? fm.removeItem(atPath: to)
                try fm.moveItem(atPath: from, toPath: to)
            }
        }
        try? fm.removeItem(atPath: "\(path).1")
        try fm.moveItem(atPath: path, toPath: "\(path).1")
        (handle, size) = try Self.open(path)
    }
}
