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
    case opus

    /// The static RTP payload type, where RFC 3551 assigns one.
    public var staticPayloadType: UInt8? {
        switch self {
        case .pcmu: return 0
        case .pcma: return 8
        case .opus: return nil
        }
    }

    /// A fresh decoder producing audio at `sampleRate` (G.711 is always 8 kHz).
    public func makeDecoder(sampleRate: Int = 8000) throws -> any PayloadDecoder {
        switch self {
        case .pcmu: return G711Decoder(law: .muLaw)
        case .pcma: return G711Decoder(law: .aLaw)
        case .opus: return try OpusPayloadDecoder(sampleRate: sampleRate)
        }
    }
}
