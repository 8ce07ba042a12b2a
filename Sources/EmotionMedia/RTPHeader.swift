/// The RTP fixed header (RFC 3550 section 5.1): written by the senders, checked on receipt.
public enum RTPHeader {
    public static let size = 12
    /// Receive buffers hold this many bytes (oRTP's UDP_MAX_SIZE); a datagram that fills one was cut short.
    public static let maxDatagram = 1500

    /// The payload after the CSRC list and header extension and before any padding; nil when one of
    /// them overruns the datagram, or when the datagram filled the whole receive buffer (it was
    /// longer: the read cut it, and no RTP audio packet is that long). Only the first byte and the
    /// extension length are read, so the other header fields may be in any byte order.
    public static func payload(of packet: UnsafeRawBufferPointer, receiveBufferSize: Int) -> UnsafeRawBufferPointer? {
        let total = packet.count
        guard total >= size, total < receiveBufferSize, let base = packet.baseAddress else { return nil }
        let first = packet[0]
        var header = size + 4 * Int(first & 0x0F)
        if first & 0x10 != 0 {
            guard header + 4 <= total else { return nil }
            header += 4 + 4 * (Int(packet[header + 2]) << 8 | Int(packet[header + 3]))
        }
        guard header <= total else { return nil }
        var padding = 0
        if first & 0x20 != 0 {
            padding = Int(packet[total - 1])
            guard padding >= 1, header + padding <= total else { return nil }
        }
        return UnsafeRawBufferPointer(start: base + header, count: total - header - padding)
    }

    /// Writes the 12-byte header at `bytes[i...]` in place (no array per packet); returns 12.
    @inline(__always)
    public static func write(
        into bytes: inout [UInt8], at i: Int, marker: Bool, payloadType: UInt8,
        sequence: UInt16, timestamp: UInt32, ssrc: UInt32, version: UInt8 = 2
    ) -> Int {
        bytes[i] = version << 6
        bytes[i + 1] = marker ? 0x80 | (payloadType & 0x7f) : payloadType & 0x7f
        bytes[i + 2] = UInt8(sequence >> 8)
        bytes[i + 3] = UInt8(sequence & 0xff)
        bytes[i + 4] = UInt8(timestamp >> 24)
        bytes[i + 5] = UInt8((timestamp >> 16) & 0xff)
        bytes[i + 6] = UInt8((timestamp >> 8) & 0xff)
        bytes[i + 7] = UInt8(timestamp & 0xff)
        bytes[i + 8] = UInt8(ssrc >> 24)
        bytes[i + 9] = UInt8((ssrc >> 16) & 0xff)
        bytes[i + 10] = UInt8((ssrc >> 8) & 0xff)
        bytes[i + 11] = UInt8(ssrc & 0xff)
        return size
    }

    /// A whole packet: header and payload.
    public static func packet(
        payloadType: UInt8, marker: Bool, sequence: UInt16, timestamp: UInt32, ssrc: UInt32,
        payload: [UInt8]
    ) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        _ = write(
            into: &bytes, at: 0, marker: marker, payloadType: payloadType, sequence: sequence, timestamp: timestamp,
            ssrc: ssrc)
        return bytes + payload
    }
}
