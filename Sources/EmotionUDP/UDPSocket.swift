import Glibc

/// One IPv4 UDP socket, closed when the value goes away.
public final class UDPSocket {
    public let fileDescriptor: Int32

    /// An unbound socket for sending; `nonBlocking` makes a send that would block fail at once.
    public init(nonBlocking: Bool = false, sendBuffer: Int32? = nil) throws(UDPError) {
        fileDescriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fileDescriptor >= 0 else { throw .system("cannot open a UDP socket") }
        if nonBlocking {
            let flags = fcntl(fileDescriptor, F_GETFL, 0)
            _ = fcntl(fileDescriptor, F_SETFL, flags | O_NONBLOCK)
        }
        if var size = sendBuffer {
            setsockopt(fileDescriptor, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// A socket bound to `endpoint` (port 0 picks one), whose receives give up after `receiveTimeout`
    /// seconds so a reader can notice a stop request.
    public convenience init(
        bindingTo endpoint: UDPEndpoint, receiveBuffer: Int32 = 1 << 20, receiveTimeout: Double = 0.2
    ) throws(UDPError) {
        try self.init()
        let rc = endpoint.withSocketAddress { bind(fileDescriptor, $0, $1) }
        guard rc == 0 else { throw .system("cannot listen on \(endpoint)") }
        var buffer = receiveBuffer
        setsockopt(fileDescriptor, SOL_SOCKET, SO_RCVBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
        let whole = Int(receiveTimeout)
        var timeout = timeval(tv_sec: whole, tv_usec: Int((receiveTimeout - Double(whole)) * 1e6))
        setsockopt(fileDescriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fileDescriptor) }

    /// The port the socket is bound to.
    public var localPort: UInt16 {
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fileDescriptor, $0, &length) }
        }
        return UInt16(bigEndian: bound.sin_port)
    }

    /// Sends one datagram; returns false when the kernel refused it (`errno` says why).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to endpoint: UDPEndpoint, flags: Int32 = 0) -> Bool {
        endpoint.withSocketAddress { sendto(fileDescriptor, bytes.baseAddress, bytes.count, flags, $0, $1) } >= 0
    }

    @discardableResult
    public func send(_ bytes: [UInt8], to endpoint: UDPEndpoint, flags: Int32 = 0) -> Bool {
        bytes.withUnsafeBytes { send($0, to: endpoint, flags: flags) }
    }

    @discardableResult
    public func send(_ text: String, to endpoint: UDPEndpoint, flags: Int32 = 0) -> Bool {
        var text = text
        return text.withUTF8 { send(UnsafeRawBufferPointer($0), to: endpoint, flags: flags) }
    }

    /// One datagram into `buffer`; its length, or nil on timeout or error.
    public func receive(into buffer: inout [UInt8]) -> Int? {
        let n = recv(fileDescriptor, &buffer, buffer.count, 0)
        return n > 0 ? n : nil
    }
}
