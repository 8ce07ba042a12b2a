import CSRTP
import EmotionMedia

/// One direction of SRTP with libsrtp2 (RTP only: RTCP is off on legs). A receiver authenticates and
/// decrypts in place; the test sender protects. Not thread-safe: one per leg, on the leg's thread.
public final class SRTPSession {
    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    public enum Direction { case inbound, outbound }

    private var session: srtp_t?
    public let crypto: SDESCrypto

    private static let initialized: Bool = srtp_init() == srtp_err_status_ok

    public init(_ crypto: SDESCrypto, direction: Direction) throws(SetupError) {
        guard Self.initialized else { throw SetupError(description: "libsrtp2 did not initialise") }
        guard crypto.keySalt.count == 30 else { throw SetupError(description: "SRTP key must be 30 bytes") }
        self.crypto = crypto
        var s: srtp_t?
        let status = crypto.keySalt.withUnsafeBufferPointer { key in
            et_srtp_create(
                &s, key.baseAddress, crypto.suite == .aesCM128HMACSHA1_80 ? 1 : 0, direction == .inbound ? 1 : 0)
        }
        guard status == srtp_err_status_ok, let s else {
            throw SetupError(description: "libsrtp2 refused the key (status \(status.rawValue))")
        }
        session = s
    }

    deinit { if let session { srtp_dealloc(session) } }

    public enum Failure: Error { case authentication, replay, other(Int32) }

    /// Authenticates and decrypts the packet at `packet` (length `length`) in place; the new length.
    public func unprotect(_ packet: UnsafeMutableRawPointer, length: Int) -> Result<Int, Failure> {
        var len = Int32(length)
        let status = srtp_unprotect(session, packet, &len)
        switch status {
        case srtp_err_status_ok: return .success(Int(len))
        case srtp_err_status_auth_fail: return .failure(.authentication)
        case srtp_err_status_replay_fail, srtp_err_status_replay_old: return .failure(.replay)
        default: return .failure(.other(Int32(status.rawValue)))
        }
    }

    /// Protects an RTP packet (header and payload) for sending; the buffer must have room for the tag.
    public func protect(_ packet: [UInt8]) -> [UInt8]? {
        var buffer = packet + [UInt8](repeating: 0, count: 16)
        var len = Int32(packet.count)
        let status = buffer.withUnsafeMutableBytes { srtp_protect(session, $0.baseAddress, &len) }
        guard status == srtp_err_status_ok else { return nil }
        return Array(buffer.prefix(Int(len)))
    }
}
