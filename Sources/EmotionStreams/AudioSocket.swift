import Foundation

/// Asterisk's AudioSocket framing (res_audiosocket): a 3-byte header, `kind` and a big-endian
/// length, then the payload. Asterisk sends the call's UUID first (kind 0x01, 16 raw bytes), then
/// audio; DTMF (0x03) since Asterisk 20.14/21.9/22.4; the slin kinds above 8 kHz since 20.17/21.12/
/// 22.7/23.1. Asterisk ends a stream by closing the socket; 0x00 (hangup) and 0xff (error) are parsed
/// too, as other clients send them.
public enum AudioSocket {
    public static let headerSize = 3
    /// The UUID must come within this long of the connect, or the connection is dropped.
    public static let uuidTimeoutSeconds = 5.0

    public enum Message: Equatable, Sendable {
        case hangup
        case uuid(UUID)
        case dtmf(Character)
        /// Signed 16-bit little-endian mono PCM at `sampleRate`.
        case audio(sampleRate: Int)
        case error(code: UInt8?)
    }

    public struct Problem: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The sample rate of an audio kind: 0x10 slin (8 kHz), 0x11 12 kHz, 0x12 16 kHz, 0x13 24 kHz,
    /// 0x14 32 kHz, 0x15 44.1 kHz, 0x16 48 kHz, 0x17 96 kHz, 0x18 192 kHz.
    public static func sampleRate(ofKind kind: UInt8) -> Int? {
        switch kind {
        case 0x10: return 8000
        case 0x11: return 12_000
        case 0x12: return 16_000
        case 0x13: return 24_000
        case 0x14: return 32_000
        case 0x15: return 44_100
        case 0x16: return 48_000
        case 0x17: return 96_000
        case 0x18: return 192_000
        default: return nil
        }
    }

    /// What one frame says; for audio, the payload is the samples (checked for a whole number of them).
    public static func message(kind: UInt8, payload: UnsafeRawBufferPointer) -> Result<Message, Problem> {
        switch kind {
        case 0x00:
            return .success(.hangup)
        case 0x01:
            guard payload.count == 16 else {
                return .failure(Problem(description: "UUID frame of \(payload.count) bytes (16 expected)"))
            }
            let b = Array(payload)
            let uuid = UUID(
                uuid: (
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
                ))
            return .success(.uuid(uuid))
        case 0x03:
            guard payload.count == 1, "0123456789*#ABCD".utf8.contains(payload[0]) else {
                return .failure(Problem(description: "DTMF frame is not one digit"))
            }
            return .success(.dtmf(Character(Unicode.Scalar(payload[0]))))
        case 0xff:
            return .success(.error(code: payload.first))
        default:
            guard let rate = sampleRate(ofKind: kind) else {
                return .failure(Problem(description: "unknown kind 0x\(String(kind, radix: 16))"))
            }
            guard !payload.isEmpty, payload.count % 2 == 0 else {
                return .failure(
                    Problem(description: "audio frame of \(payload.count) bytes (whole 16-bit samples expected)"))
            }
            return .success(.audio(sampleRate: rate))
        }
    }

    /// A frame as a client writes it (tests, the load generator).
    public static func frame(kind: UInt8, payload: [UInt8]) -> [UInt8] {
        [kind, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)] + payload
    }
}
