import CSoxr

/// A streaming libsoxr resampler for 16-bit mono PCM from any rate to another (a stream source at 12,
/// 16, 24, 44.1 or 48 kHz to the 8 kHz core). Output follows input with the resampler's delay (about
/// 80 ms for 16 to 8 kHz at medium quality); nothing is invented at the start, so a stream's last few
/// tens of milliseconds stay in the resampler when it ends.
public final class PCMResampler {
    public let inputRate: Int
    public let outputRate: Int
    private let soxr: soxr_t

    public enum SetupError: Error, Equatable, CustomStringConvertible {
        case unsupportedRate(Int)
        case resampler(String)

        public var description: String {
            switch self {
            case .unsupportedRate(let r): return "sample rate \(r) Hz is not supported (8000-192000)"
            case .resampler(let why): return "libsoxr: \(why)"
            }
        }
    }

    public init(inputRate: Int, outputRate: Int = 8000) throws(SetupError) {
        guard (8000...192_000).contains(inputRate) else { throw .unsupportedRate(inputRate) }
        self.inputRate = inputRate
        self.outputRate = outputRate
        var error: soxr_error_t?
        var io = soxr_io_spec(SOXR_INT16_I, SOXR_INT16_I)
        // Medium quality: band-limited with a short delay, for a live path.
        var quality = soxr_quality_spec(UInt(SOXR_MQ), 0)
        let r = soxr_create(Double(inputRate), Double(outputRate), 1, &error, &io, &quality, nil)
        if let error { throw .resampler(String(cString: error)) }
        guard let r else { throw .resampler("soxr_create returned nothing") }
        soxr = r
    }

    deinit { soxr_delete(soxr) }

    /// The most output `count` input samples can yield (a buffer size for `process`).
    public func maxOutput(for count: Int) -> Int { count * outputRate / inputRate + 64 }

    /// Resamples `input` into `output`; returns how many samples were written.
    public func process(
        _ input: UnsafeBufferPointer<Int16>, into output: UnsafeMutableBufferPointer<Int16>
    ) -> Int {
        var done = 0
        _ = soxr_process(soxr, input.baseAddress, input.count, nil, output.baseAddress, output.count, &done)
        return done
    }
}
