import EmotionCore
import EmotionMedia

/// The kinds of hostile packet `loadgen --malformed` mixes into a leg's stream, sent from the leg's
/// own sender (so an allow-list or source lock does not stop them: the parser has to).
public enum HostilePacket: String, CaseIterable, Sendable {
    case randomBytes = "random_bytes"
    case truncatedHeader = "truncated_header"
    case badVersion = "bad_version"
    case paddingOverrun = "padding_overrun"
    case extensionOverrun = "extension_overrun"
    case csrcOverrun = "csrc_overrun"
    case unknownPayloadType = "unknown_payload_type"
    case invalidOpusTOC = "invalid_opus_toc"
    case hugeDatagram = "huge_datagram"

    public static let hugeSize = 60_000
    /// Every kind but the huge one fits a batch slot of this size.
    public static let largestBatched = 200

    public var index: Int { HostilePacket.allCases.firstIndex(of: self)! }

    /// Kinds with a well-formed start take the real packet's place (same sequence number); the
    /// rest arrive as extra datagrams.
    public var replacesPacket: Bool {
        switch self {
        case .paddingOverrun, .extensionOverrun, .csrcOverrun, .unknownPayloadType, .invalidOpusTOC: true
        case .randomBytes, .truncatedHeader, .badVersion, .hugeDatagram: false
        }
    }

    /// Writes the packet at `bytes[i...]`; returns its length. Header fields come from the leg's
    /// stream (its SSRC and the sequence number just sent) so that they reach the leg's session.
    public func write(
        into bytes: inout [UInt8], at i: Int, seq: UInt16, timestamp: UInt32, ssrc: UInt32, rng: inout SplitMix64
    ) -> Int {
        func header(version: UInt8 = 2, payloadType: UInt8 = 0) -> Int {
            RTPHeader.write(
                into: &bytes, at: i, marker: false, payloadType: payloadType, sequence: seq, timestamp: timestamp,
                ssrc: ssrc,
                version: version)
        }
        func fill(_ range: Range<Int>) { for k in range { bytes[k] = UInt8(truncatingIfNeeded: rng.next()) } }
        switch self {
        case .randomBytes:
            let n = 1 + Int(rng.next() % 199)
            fill(i..<(i + n))
            return n
        case .truncatedHeader:
            let n = 1 + Int(rng.next() % 11)
            _ = header()
            return n
        case .badVersion:
            _ = header(version: UInt8(rng.next() % 2))  // 0 or 1
            fill((i + 12)..<(i + 172))
            return 172
        case .paddingOverrun:
            _ = header()
            bytes[i] |= 0x20
            fill((i + 12)..<(i + 40))
            bytes[i + 39] = 255  // 255 bytes of padding in a 40-byte packet
            return 40
        case .extensionOverrun:
            _ = header()
            bytes[i] |= 0x10
            bytes[i + 12] = 0xBE; bytes[i + 13] = 0xDE
            bytes[i + 14] = 0xFF; bytes[i + 15] = 0xFF  // 65535 words of extension in a 24-byte packet
            fill((i + 16)..<(i + 24))
            return 24
        case .csrcOverrun:
            _ = header()
            bytes[i] |= 0x0F  // 15 CSRCs = 60 bytes, in a 20-byte packet
            fill((i + 12)..<(i + 20))
            return 20
        case .unknownPayloadType:
            _ = header(payloadType: 77)
            fill((i + 12)..<(i + 172))
            return 172
        case .invalidOpusTOC:
            // Code 3 with a frame count of 0 (invalid in RFC 6716) under the Opus payload type.
            _ = header(payloadType: 111)
            bytes[i + 12] = 0xFB; bytes[i + 13] = 0x00
            return 14
        case .hugeDatagram:
            _ = header()
            fill((i + 12)..<(i + HostilePacket.hugeSize))
            return HostilePacket.hugeSize
        }
    }
}
