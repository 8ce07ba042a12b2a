import Glibc

/// One RTP packet as a plain value: what the per-leg path needs, whatever delivered it (an oRTP
/// session, a SIPREC leg, a test). `payload` and `source` point into the deliverer's buffer and are
/// valid only while the packet is being handled.
public struct RTPPacket {
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32
    public var payloadType: UInt8
    public var marker: Bool
    public var payload: UnsafeRawBufferPointer
    /// Arrival time (seconds since the epoch).
    public var arrival: Double
    public var source: SourceAddress

    public init(
        sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32, payloadType: UInt8, marker: Bool,
        payload: UnsafeRawBufferPointer, arrival: Double,
        source: SourceAddress = SourceAddress(ipv4: 0x7f00_0001, port: 5004)
    ) {
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payloadType = payloadType
        self.marker = marker
        self.payload = payload
        self.arrival = arrival
        self.source = source
    }

    /// Parses a whole datagram (checked as `RTPHeader.payload(of:)` checks it); nil when it is not RTP.
    public init?(
        datagram: UnsafeRawBufferPointer, arrival: Double, source: SourceAddress = SourceAddress(ipv4: 0, port: 0),
        receiveBufferSize: Int = RTPHeader.maxDatagram
    ) {
        guard datagram.count >= 12, datagram[0] >> 6 == 2,
            let payload = RTPHeader.payload(of: datagram, receiveBufferSize: receiveBufferSize)
        else { return nil }
        self.init(
            sequenceNumber: UInt16(datagram[2]) << 8 | UInt16(datagram[3]),
            timestamp: datagram[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) },
            ssrc: datagram[8..<12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) },
            payloadType: datagram[1] & 0x7f, marker: datagram[1] & 0x80 != 0,
            payload: payload, arrival: arrival, source: source)
    }
}

/// Who sent a packet: the IPv4 address (host byte order) and port the source policy checks, and
/// optionally the raw socket address (IPv6 too) for display, formatted only when asked.
public struct SourceAddress {
    /// 0 when unknown or IPv6.
    public var ipv4: UInt32
    public var port: UInt16
    /// A `sockaddr` owned by the deliverer, valid while the packet is handled.
    public var socketAddress: UnsafeRawPointer?
    public var socketAddressLength: Int

    public init(ipv4: UInt32, port: UInt16, socketAddress: UnsafeRawPointer? = nil, socketAddressLength: Int = 0) {
        self.ipv4 = ipv4
        self.port = port
        self.socketAddress = socketAddress
        self.socketAddressLength = socketAddressLength
    }

    /// "host:port", or nil when the sender is unknown.
    public var text: String? {
        if let socketAddress, socketAddressLength > 0 {
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST)),
                service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
            let rc = getnameinfo(
                socketAddress.assumingMemoryBound(to: sockaddr.self), socklen_t(socketAddressLength),
                &host, socklen_t(host.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            guard rc == 0 else { return nil }
            return "\(String(cString: host)):\(String(cString: service))"
        }
        guard ipv4 != 0 else { return nil }
        return "\(ipv4 >> 24).\((ipv4 >> 16) & 0xff).\((ipv4 >> 8) & 0xff).\(ipv4 & 0xff):\(port)"
    }
}
