import EmotionMedia
import Foundation
import Testing

@Suite("SDES keys")
struct SDESCryptoTests {
    // RFC 4568's example key (30 bytes).
    static let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"

    @Test("a=crypto values parse with or without the tag, with a lifetime, and print back")
    func parse() throws {
        let a = try SDESCrypto(attribute: "1 AES_CM_128_HMAC_SHA1_80 inline:\(Self.key)|2^20")
        #expect(a.tag == 1 && a.suite == .aesCM128HMACSHA1_80 && a.keySalt.count == 30 && a.tagLength == 10)
        let b = try SDESCrypto(attribute: "AES_CM_128_HMAC_SHA1_32 inline:\(Self.key)")
        #expect(b.tag == nil && b.suite == .aesCM128HMACSHA1_32 && b.tagLength == 4)
        #expect(try SDESCrypto(attribute: a.attribute) == SDESCrypto(suite: a.suite, keySalt: a.keySalt, tag: 1))
        let r = SDESCrypto.random(.aesCM128HMACSHA1_80, tag: 2)
        #expect(r.keySalt.count == 30 && r.keySalt != SDESCrypto.random(.aesCM128HMACSHA1_80, tag: 2).keySalt)
    }

    @Test("unsupported suites, MKI, session parameters and bad keys are refused with the reason")
    func refused() {
        let cases: [(String, String)] = [
            ("1 AEAD_AES_256_GCM inline:\(Self.key)", "not supported"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:\(Self.key)|2^20|1:4", "MKI"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:\(Self.key) UNENCRYPTED_SRTP", "session parameters"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=", "30 bytes"),
            ("1 AES_CM_128_HMAC_SHA1_80 key:\(Self.key)", "inline"),
            ("", "expected"),
        ]
        for (text, words) in cases {
            #expect {
                try SDESCrypto(attribute: text)
            } throws: { "\($0)".contains(words) }
        }
    }
}
