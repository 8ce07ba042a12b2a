import EmotionDigest
import Foundation

/// The protocol's signature, both sides: HMAC-SHA256 over the event exactly as serialised without
/// its `sig` field, which is then appended last as 64 lowercase hex digits.
public struct EventSigner: Sendable {
    private let key: [UInt8]

    public init(key: String) {
        self.key = Array(key.utf8)
    }

    /// `unsigned` (a serialised event object) with `"sig"` added as its last field.
    public func sign(_ unsigned: String) -> String {
        precondition(unsigned.hasSuffix("}"), "an event is a JSON object")
        return String(unsigned.dropLast()) + ",\"sig\":\"\(signature(of: unsigned))\"}"
    }

    /// True when `datagram` ends with a `sig` that matches the rest of it.
    public func verify(_ datagram: String) -> Bool {
        guard let range = datagram.range(of: ",\"sig\":\"", options: .backwards), datagram.hasSuffix("\"}") else {
            return false
        }
        let unsigned = String(datagram[..<range.lowerBound]) + "}"
        let claimed = datagram[range.upperBound..<datagram.index(datagram.endIndex, offsetBy: -2)]
        // Compare MACs, not strings, so the check takes the same time wherever they differ.
        guard claimed.utf8.count == 64, let bytes = Self.bytes(hex: claimed) else { return false }
        return Digest.equalInConstantTime(bytes, Digest.hmacSHA256(key: key, data: unsigned.utf8))
    }

    /// HMAC-SHA256 of a whole body as sent, for an HTTP header (webhooks), in lowercase hex.
    public func signature(ofBody body: String) -> String { signature(of: body) }

    private func signature(of text: String) -> String {
        Self.hex(Digest.hmacSHA256(key: key, data: text.utf8))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func bytes(hex: Substring) -> [UInt8]? {
        var out = [UInt8]()
        var high: UInt8?
        for c in hex.utf8 {
            let v: UInt8
            switch c {
            case 0x30...0x39: v = c - 0x30
            case 0x61...0x66: v = c - 0x61 + 10
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return high == nil ? out : nil
    }
}
