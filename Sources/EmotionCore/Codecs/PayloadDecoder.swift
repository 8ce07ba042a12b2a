/// What went wrong with one packet's payload. The packet is dropped and counted; the leg goes on.
public enum PayloadDecodeError: Error, Equatable, Sendable {
    case empty
    case tooLarge(bytes: Int)
    case invalidOpus(code: Int32)
}

/// Decodes one RTP payload format to 8 kHz (or the decoder's `sampleRate`) 16-bit linear audio,
/// and fills gaps where packets were lost.
///
/// Output goes into caller-owned buffers so the per-packet path allocates nothing.
public protocol PayloadDecoder: AnyObject {
    /// Output sample rate in Hz.
    var sampleRate: Int { get }
    /// How many samples `payload` will decode to, or nil when the payload cannot be decoded.
    func sampleCount(of payload: UnsafeRawBufferPointer) -> Int?
    /// Decodes one packet; returns the number of samples written.
    func decode(
        _ payload: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>
    ) throws(PayloadDecodeError) -> Int
    /// Synthesises `count` samples for audio that never arrived; returns the number written.
    func conceal(_ count: Int, into output: UnsafeMutableBufferPointer<Int16>) -> Int
    /// Rebuilds up to `count` lost samples from the packet that followed the gap (Opus in-band FEC);
    /// decoders without FEC conceal instead.
    func recover(_ count: Int, from next: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>) -> Int
}

extension PayloadDecoder {
    public func recover(
        _ count: Int, from next: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>
    ) -> Int {
        conceal(count, into: output)
    }
}

/// The codecs a leg can carry.
public enum VoiceCodec: String, Sendable, CaseIterable, Codable {
    case pcmu
    case pcma
    /// G.722 at 64 kbit/s (wideband; decoded to the 8 kHz core).
    case g722
    /// 16-bit linear PCM at 8 kHz, and at 16 kHz.
    case l16 = "l16"
    case l16Wide = "l16-16000"
    case opus

    /// The static RTP payload type, where RFC 3551 assigns one (L16's static types are 44.1 kHz).
    public var staticPayloadType: UInt8? {
        switch self {
        case .pcmu: return 0
        case .pcma: return 8
        case .g722: return 9
        case .l16, .l16Wide, .opus: return nil
        }
    }

    /// The codec an SDP `a=rtpmap` names (`PCMU/8000`, `G722/8000`, `L16/16000`, `opus/48000/2`), if
    /// it is one of these; the name is case-insensitive (RFC 4566).
    public init?(rtpmapEncoding name: String, clockRate: Int) {
        switch (name.lowercased(), clockRate) {
        case ("pcmu", 8000): self = .pcmu
        case ("pcma", 8000): self = .pcma
        case ("g722", 8000): self = .g722
        case ("l16", 8000): self = .l16
        case ("l16", 16_000): self = .l16Wide
        case ("opus", 48_000): self = .opus
        default: return nil
        }
    }

    /// The `a=rtpmap` encoding of this codec.
    public var rtpmapEncoding: String {
        switch self {
        case .pcmu: return "PCMU/8000"
        case .pcma: return "PCMA/8000"
        case .g722: return "G722/8000"
        case .l16: return "L16/8000"
        case .l16Wide: return "L16/16000"
        case .opus: return "opus/48000/2"
        }
    }

    /// A fresh decoder producing audio at `sampleRate` (G.711, G.722 and L16 always give 8 kHz).
    public func makeDecoder(sampleRate: Int = 8000) throws -> any PayloadDecoder {
        switch self {
        case .pcmu: return G711Decoder(law: .muLaw)
        case .pcma: return G711Decoder(law: .aLaw)
        case .g722: return G722Decoder()
        case .l16: return try L16Decoder(inputRate: 8000)
        case .l16Wide: return try L16Decoder(inputRate: 16_000)
        case .opus: return try OpusPayloadDecoder(sampleRate: sampleRate)
        }
    }
}
