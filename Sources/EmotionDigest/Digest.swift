internal import COpenSSL

/// The digests the project needs, from OpenSSL's libcrypto: HMAC-SHA256 (event signatures, webhook
/// signatures, AudioHook's request signatures) and SHA-1 (the WebSocket handshake's accept key).
public enum Digest {
    /// HMAC-SHA256 of `data` under `key`: 32 bytes.
    public static func hmacSHA256(key: some Collection<UInt8>, data: some Collection<UInt8>) -> [UInt8] {
        let key = Array(key), data = Array(data)
        var out = [UInt8](repeating: 0, count: 32)
        let ok = key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                out.withUnsafeMutableBytes { o in
                    et_hmac_sha256(
                        k.baseAddress, k.count, d.baseAddress, d.count,
                        o.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        // Only a broken libcrypto (no default provider) fails here: nothing a caller could recover from.
        precondition(ok == 1, "libcrypto's HMAC-SHA256 failed")
        return out
    }

    /// SHA-1 of `data`: 20 bytes (not for security: the WebSocket handshake asks for it).
    public static func sha1(_ data: some Collection<UInt8>) -> [UInt8] {
        let data = Array(data)
        var out = [UInt8](repeating: 0, count: 20)
        let ok = data.withUnsafeBytes { d in
            out.withUnsafeMutableBytes { o in
                et_sha1(d.baseAddress, d.count, o.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        precondition(ok == 1, "libcrypto's SHA-1 failed")
        return out
    }

    /// Whether two MACs are equal, compared in constant time (different lengths are simply unequal).
    public static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in et_equal_constant_time(x.baseAddress, y.baseAddress, a.count) == 1 }
        }
    }
}
