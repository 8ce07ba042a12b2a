import EmotionDigest
import Foundation
import Glibc

/// A blocking TCP connection, for AudioSocket and WebSocket clients (tests, the load generator).
public final class TCPConnection: @unchecked Sendable {
    public let fd: Int32

    public init(port: Int, host: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TrafficError("socket: \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            Glibc.close(fd)
            throw TrafficError("connect to \(host):\(port): errno \(errno)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { Glibc.close(fd) }

    public func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
            guard n > 0 else { throw TrafficError("send: errno \(errno)") }
            sent += n
        }
    }

    /// Up to `max` bytes, waiting at most `timeout`; [] on end of stream, nil on timeout.
    public func receive(max: Int = 65536, timeout: Double) -> [UInt8]? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(timeout * 1000)) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
        return n <= 0 ? [] : Array(buffer[0..<n])
    }

    /// Whether the peer closed the connection within `timeout` (reading and dropping what comes).
    public func closedByPeer(within timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard let bytes = receive(timeout: deadline.timeIntervalSinceNow) else { return false }
            if bytes.isEmpty { return true }
        }
        return false
    }

    /// Closes the socket with no goodbye of any protocol: a client that vanished.
    public func abort() { shutdown(fd, Int32(SHUT_RDWR)) }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A WebSocket client written from RFC 6455 for tests and the load generator: the opening handshake
/// (checks Sec-WebSocket-Accept), masked client frames, and reading the server's frames (answering
/// pings). Deliberately none of the service's code (it uses hummingbird-websocket's).
public final class WebSocketClient: @unchecked Sendable {
    public enum Opcode: UInt8 { case continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 }

    public struct Frame {
        public var opcode: UInt8
        public var payload: [UInt8]
        public var text: String { String(decoding: payload, as: UTF8.self) }
    }

    public struct Refused: Error, CustomStringConvertible {
        public let status: Int
        public let body: String
        public var description: String { "HTTP \(status): \(body)" }
    }

    public let connection: TCPConnection
    /// The handshake's response headers (lower-case names).
    public private(set) var responseHeaders: [String: String] = [:]
    private var pending: [UInt8] = []

    /// Connects and upgrades; throws `Refused` with the status and body when the server says no.
    public init(
        port: Int, path: String, headers: [String: String] = [:], host: String = "127.0.0.1",
        handshakeTimeout: Double = 5
    ) throws {
        connection = try TCPConnection(port: port, host: host)
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var request =
            "GET \(path) HTTP/1.1\r\nHost: \(headers["Host"] ?? "\(host):\(port)")\r\nUpgrade: websocket\r\n"
            + "Connection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers where name != "Host" { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try connection.send(Array(request.utf8))
        // The response head, then whatever of the body or first frames came with it.
        var head: [UInt8] = []
        let end: [UInt8] = [13, 10, 13, 10]
        while true {
            guard let chunk = connection.receive(timeout: handshakeTimeout), !chunk.isEmpty else {
                throw TrafficError("no handshake response")
            }
            head += chunk
            if let r = Self.find(end, in: head) {
                pending = Array(head[(r + 4)...])
                head = Array(head[..<r])
                break
            }
        }
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            responseHeaders[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        guard status == 101 else {
            var body = pending
            let length = Int(responseHeaders["content-length"] ?? "0") ?? 0
            while body.count < length, let more = connection.receive(timeout: 2), !more.isEmpty { body += more }
            throw Refused(status: status, body: String(decoding: body, as: UTF8.self))
        }
        let accept = Data(Digest.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)).base64EncodedString()
        guard responseHeaders["sec-websocket-accept"] == accept else {
            throw TrafficError("Sec-WebSocket-Accept is \(responseHeaders["sec-websocket-accept"] ?? "missing")")
        }
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where Array(hay[i..<(i + needle.count)]) == needle { return i }
        return nil
    }

    public func send(text: String) throws { try send(.text, Array(text.utf8)) }
    public func send(binary: [UInt8]) throws { try send(.binary, binary) }

    /// One frame, FIN set, masked with a fresh key (RFC 6455 5.3).
    public func send(_ opcode: Opcode, _ payload: [UInt8]) throws {
        try connection.send(Self.frame(opcode, payload, mask: (0..<4).map { _ in UInt8.random(in: 0...255) }))
    }

    /// A client frame built once (the load generator sends the same frames to many connections).
    public func send(prepared frame: [UInt8]) throws { try connection.send(frame) }

    public static func frame(_ opcode: Opcode, _ payload: [UInt8], mask: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = [0x80 | opcode.rawValue]
        let n = payload.count
        if n < 126 {
            frame.append(0x80 | UInt8(n))
        } else if n <= 0xffff {
            frame += [0x80 | 126, UInt8(n >> 8), UInt8(n & 0xff)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((n >> shift) & 0xff)) }
        }
        frame += mask
        frame.reserveCapacity(frame.count + n)
        for (i, b) in payload.enumerated() { frame.append(b ^ mask[i % 4]) }
        return frame
    }

    /// Sends a close frame with `code`.
    public func close(code: UInt16 = 1000) throws { try send(.close, [UInt8(code >> 8), UInt8(code & 0xff)]) }

    /// The next data or close frame within `timeout` (pings are answered on the way); nil on timeout or
    /// when the connection ended.
    public func receive(timeout: Double) -> Frame? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let frame = parse() {
                if frame.opcode == Opcode.ping.rawValue {
                    try? send(.pong, frame.payload)
                    continue
                }
                return frame
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0, let more = connection.receive(timeout: left), !more.isEmpty else { return nil }
            pending += more
        }
    }

    /// Text frames until `condition` holds for one of them or `timeout` passes; all the text frames seen.
    public func texts(timeout: Double, until condition: (String) -> Bool) -> [String] {
        var seen: [String] = []
        let deadline = Date().addingTimeInterval(timeout)
        while deadline.timeIntervalSinceNow > 0, let frame = receive(timeout: deadline.timeIntervalSinceNow) {
            guard frame.opcode == Opcode.text.rawValue else {
                if frame.opcode == Opcode.close.rawValue { break }
                continue
            }
            seen.append(frame.text)
            if condition(frame.text) { break }
        }
        return seen
    }

    /// A whole unmasked server frame from `pending`, if one is there.
    private func parse() -> Frame? {
        guard pending.count >= 2 else { return nil }
        var length = Int(pending[1] & 0x7f)
        var at = 2
        if length == 126 {
            guard pending.count >= 4 else { return nil }
            length = Int(pending[2]) << 8 | Int(pending[3])
            at = 4
        } else if length == 127 {
            guard pending.count >= 10 else { return nil }
            length = pending[2..<10].reduce(0) { $0 << 8 | Int($1) }
            at = 10
        }
        guard pending.count >= at + length else { return nil }
        let frame = Frame(opcode: pending[0] & 0x0f, payload: Array(pending[at..<(at + length)]))
        pending.removeFirst(at + length)
        return frame
    }
}
