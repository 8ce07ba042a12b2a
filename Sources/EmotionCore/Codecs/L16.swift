/// L16 (RFC 3551: 16-bit big-endian linear PCM) at 8 or 16 kHz, to the 8 kHz core; 16 kHz goes through
/// a streaming libsoxr resampler. Lost packets are concealed with spandsp's PLC on the 8 kHz output.
///
/// Every packet yields exactly its duration at 8 kHz (the playout counts on it): the resampler's output
/// goes through a small queue that starts with the resampler's delay in silence.
public final class L16Decoder: PayloadDecoder {
    public var sampleRate: Int { 8000 }
    public let inputRate: Int
    private let plc = PacketLossConcealment()
    private let resampler: PCMResampler?
    /// Input samples in host order (for the resampler), and resampled output not yet handed out.
    private let scratch: UnsafeMutableBufferPointer<Int16>
    private let queue: UnsafeMutableBufferPointer<Int16>
    private var queued = 0
    /// Input samples per output sample (1 or 2).
    private let ratio: Int
    /// 1500-byte packets are the norm; this bounds a packet to 1 s at 16 kHz.
    public static let maxSamples = 16_000

    public enum SetupError: Error, Equatable { case unsupportedRate(Int), resampler(String) }

    public init(inputRate: Int) throws(SetupError) {
        guard inputRate == 8000 || inputRate == 16_000 else { throw .unsupportedRate(inputRate) }
        self.inputRate = inputRate
        ratio = inputRate / 8000
        if inputRate != 8000 {
            do { resampler = try PCMResampler(inputRate: inputRate) } catch { throw .resampler(error.description) }
        } else {
            resampler = nil
        }
        scratch = .allocate(capacity: Self.maxSamples)
        queue = .allocate(capacity: Self.maxSamples)
        queue.initialize(repeating: 0)
    }

    deinit {
        scratch.deallocate()
        queue.deallocate()
    }

    public func sampleCount(of payload: UnsafeRawBufferPointer) -> Int? {
        let samples = payload.count / 2
        guard samples > 0, payload.count % 2 == 0, samples <= Self.maxSamples, samples % ratio == 0 else { return nil }
        return samples / ratio
    }

    public func decode(
        _ payload: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>
    ) throws(PayloadDecodeError) -> Int {
        guard !payload.isEmpty else { throw .empty }
        guard let count = sampleCount(of: payload), count <= output.count else {
            throw .tooLarge(bytes: payload.count)
        }
        let samples = payload.count / 2
        for i in 0..<samples {
            scratch[i] = Int16(bitPattern: UInt16(payload[2 * i]) << 8 | UInt16(payload[2 * i + 1]))
        }
        if let resampler {
            queued += resampler.process(
                UnsafeBufferPointer(rebasing: scratch[0..<samples]),
                into: UnsafeMutableBufferPointer(rebasing: queue[queued...]))
            // Until the resampler's delay has filled the queue, the missing part is silence at the start.
            let have = min(queued, count)
            let lead = count - have
            output.baseAddress!.update(repeating: 0, count: lead)
            (output.baseAddress! + lead).update(from: queue.baseAddress!, count: have)
            queue.baseAddress!.update(from: queue.baseAddress! + have, count: queued - have)
            queued -= have
        } else {
            output.baseAddress!.update(from: scratch.baseAddress!, count: count)
        }
        plc.heard(output, count: count)
        return count
    }

    public func conceal(_ count: Int, into output: UnsafeMutableBufferPointer<Int16>) -> Int {
        plc.conceal(count, into: output)
    }
}
