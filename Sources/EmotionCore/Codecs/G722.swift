import CSpanDSP

/// G.722 decoding through spandsp, straight to the 8 kHz core (spandsp's own 8 kHz output drops the
/// upper band), with spandsp's packet loss concealment on that output.
///
/// RFC 3551 keeps G.722's RTP clock at 8000 although it samples at 16 kHz; at 64 kbit/s one payload byte
/// is two 16 kHz samples, so one 8 kHz output sample: timestamps and output line up.
public final class G722Decoder: PayloadDecoder {
    public var sampleRate: Int { 8000 }
    private let codec: OpaquePointer
    private let plc = PacketLossConcealment()
    public static let maxPayload = 65_536

    public init() {
        // spandsp allocates when handed nil; released in deinit.
        codec = g722_decode_init(nil, 64_000, Int32(G722_SAMPLE_RATE_8000))!
    }

    deinit { g722_decode_free(codec) }

    public func sampleCount(of payload: UnsafeRawBufferPointer) -> Int? {
        payload.isEmpty || payload.count > Self.maxPayload ? nil : payload.count
    }

    public func decode(
        _ payload: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>
    ) throws(PayloadDecodeError) -> Int {
        guard !payload.isEmpty else { throw .empty }
        guard payload.count <= output.count, payload.count <= Self.maxPayload else {
            throw .tooLarge(bytes: payload.count)
        }
        let bytes = payload.bindMemory(to: UInt8.self)
        let n = Int(g722_decode(codec, output.baseAddress, bytes.baseAddress, Int32(bytes.count)))
        plc.heard(output, count: n)
        return n
    }

    public func conceal(_ count: Int, into output: UnsafeMutableBufferPointer<Int16>) -> Int {
        plc.conceal(count, into: output)
    }
}

/// G.722 encoding (64 kbit/s) from 8 kHz audio, for the project's own sender and tests.
public final class G722Encoder {
    private let codec: OpaquePointer

    public init() {
        codec = g722_encode_init(nil, 64_000, Int32(G722_SAMPLE_RATE_8000))!
    }

    deinit { g722_encode_free(codec) }

    /// One byte per 8 kHz sample.
    public func encode(_ samples: [Int16]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: samples.count)
        let n = samples.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                g722_encode(codec, o.baseAddress, s.baseAddress, Int32(s.count))
            }
        }
        out.removeLast(out.count - Int(max(0, n)))
        return out
    }
}
