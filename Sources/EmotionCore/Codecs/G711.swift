import CSpanDSP

/// G.711 companding laws.
public enum G711Law: Sendable {
    case muLaw
    case aLaw

    var spandspMode: Int32 {
        switch self {
        case .muLaw: return Int32(G711_ULAW)
        case .aLaw: return Int32(G711_ALAW)
        }
    }

    /// Expands one code word with spandsp's tables.
    @inline(__always)
    public func linear(_ code: UInt8) -> Int16 {
        switch self {
        case .muLaw: return et_ulaw_to_linear(code)
        case .aLaw: return et_alaw_to_linear(code)
        }
    }

    /// Compresses one linear sample with spandsp.
    @inline(__always)
    public func encode(_ sample: Int16) -> UInt8 {
        switch self {
        case .muLaw: return et_linear_to_ulaw(Int32(sample))
        case .aLaw: return et_linear_to_alaw(Int32(sample))
        }
    }
}

/// G.711 decoding through spandsp, with spandsp's packet loss concealment.
///
/// Each decoded packet is also fed to the PLC history so a later gap continues the voice
/// smoothly instead of dropping to silence.
public final class G711Decoder: PayloadDecoder {
    public let law: G711Law
    public var sampleRate: Int { 8000 }
    private let codec: OpaquePointer
    private let plc = PacketLossConcealment()
    /// RTP packets are at most ~1500 bytes; one G.711 byte is one sample.
    public static let maxPayload = 65_536

    public init(law: G711Law) {
        self.law = law
        // spandsp allocates when handed nil; released in deinit.
        codec = g711_init(nil, law.spandspMode)!
    }

    deinit { g711_free(codec) }

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
        let n = Int(g711_decode(codec, output.baseAddress, bytes.baseAddress, Int32(bytes.count)))
        plc.heard(output, count: n)
        return n
    }

    public func conceal(_ count: Int, into output: UnsafeMutableBufferPointer<Int16>) -> Int {
        plc.conceal(count, into: output)
    }
}
