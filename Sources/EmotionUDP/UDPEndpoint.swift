import Glibc

/// Why an address or a socket operation failed, in one sentence with the reason.
public struct UDPError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// The error with the system's words for `errno`.
    static func system(_ what: String, errno code: Int32 = errno) -> UDPError {
        UDPError("\(what): \(String(cString: strerror(code))) (errno \(code))")
    }
}

/// An IPv4 address and port, parsed once from "HOST:PORT" (HOST a dotted quad or `localhost`).
public struct UDPEndpoint: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: UInt16
    /// The same, ready for sendto/bind/connect.
    public let address: sockaddr_in

    public init(_ text: String) throws(UDPError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw UDPError("'\(text)' is not HOST:PORT") }
        try self.init(host: String(parts[0]), port: port)
    }

    public init(host: String, port: UInt16) throws(UDPError) {
        let numeric = host == "localhost" ? "127.0.0.1" : host
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, numeric, &addr.sin_addr) == 1 else {
            throw UDPError("'\(host)' is not an IPv4 address")
        }
        self.host = numeric
        self.port = port
        address = addr
    }

    public var description: String { "\(host):\(port)" }

    public static func == (a: UDPEndpoint, b: UDPEndpoint) -> Bool { a.host == b.host && a.port == b.port }

    /// Calls `body` with the address as a `sockaddr` pointer and its length.
    public func withSocketAddress<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafePointer(to: address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}
