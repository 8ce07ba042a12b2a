import Foundation

/// An SRTP key as SDP carries it (RFC 4568 SDES, `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:...`), for the
/// two suites every SBC offers. Master key identifiers and session parameters are refused, not ignored.
public struct SDESCrypto: Sendable, Equatable {
    public enum Suite: String, Sendable, CaseIterable {
        case aesCM128HMACSHA1_80 = "AES_CM_128_HMAC_SHA1_80"
        case aesCM128HMACSHA1_32 = "AES_CM_128_HMAC_SHA1_32"
    }

    /// The `a=crypto` tag, when parsed from SDP.
    public var tag: Int?
    public var suite: Suite
    /// 16 bytes of master key, then 14 of salt.
    public var keySalt: [UInt8]

    public struct Problem: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    public init(suite: Suite, keySalt: [UInt8], tag: Int? = nil) {
        self.suite = suite
        self.keySalt = keySalt
        self.tag = tag
    }

    /// A fresh random key (for an answer's own `a=crypto`: a recorder never sends, but SDES wants one).
    public static func random(_ suite: Suite, tag: Int?) -> SDESCrypto {
        var g = SystemRandomNumberGenerator()
        return SDESCrypto(suite: suite, keySalt: (0..<30).map { _ in UInt8.random(in: 0...255, using: &g) }, tag: tag)
    }

    /// Parses an `a=crypto` value, with or without its leading tag:
    /// `[1 ]AES_CM_128_HMAC_SHA1_80 inline:<base64 of 30 bytes>[|lifetime]`.
    public init(attribute: String) throws(Problem) {
        var fields = attribute.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        var tag: Int?
        if let first = fields.first, let t = Int(first) {
            tag = t
            fields.removeFirst()
        }
        guard fields.count >= 2 else { throw Problem(description: "expected SUITE inline:KEY") }
        guard let suite = Suite(rawValue: fields[0]) else {
            throw Problem(
                description: "crypto suite \(fields[0].prefix(40)) not supported (only "
                    + Suite.allCases.map(\.rawValue).joined(separator: ", ") + ")")
        }
        guard fields.count == 2 else {
            throw Problem(description: "SDES session parameters (\(fields[2].prefix(40))) are not supported")
        }
        let keyParams = fields[1]
        guard keyParams.hasPrefix("inline:") else { throw Problem(description: "key must be inline:BASE64") }
        let parts = keyParams.dropFirst("inline:".count).split(separator: "|", omittingEmptySubsequences: false)
        // A lifetime may follow; a master key identifier (n:len) needs MKI support and is refused.
        if parts.count > 1, parts.dropFirst().contains(where: { $0.contains(":") }) {
            throw Problem(description: "master key identifiers (MKI) are not supported")
        }
        guard let data = Data(base64Encoded: String(parts[0])), data.count == 30 else {
            throw Problem(description: "inline key must be base64 of 30 bytes (16 key + 14 salt)")
        }
        self.init(suite: suite, keySalt: Array(data), tag: tag)
    }

    /// The `a=crypto` value for this key (with the tag when it has one).
    public var attribute: String {
        (tag.map { "\($0) " } ?? "") + "\(suite.rawValue) inline:\(Data(keySalt).base64EncodedString())"
    }

    /// Bytes of authentication tag each SRTP packet carries.
    public var tagLength: Int { suite == .aesCM128HMACSHA1_80 ? 10 : 4 }
}
