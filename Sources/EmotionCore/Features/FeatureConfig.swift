/// Frame-level analysis parameters: the librosa parameters they mirror are named alongside.
public struct FeatureConfig: Sendable, Codable, Equatable, Hashable {
    /// `sr`: the analysis rate. Audio at other rates is resampled before analysis.
    public var sampleRate: Int
    /// `n_fft`: FFT size, and the frame length of RMS and zero-crossing rate.
    public var nFFT: Int
    /// `win_length`: the Hann window, centred in the FFT frame.
    public var winLength: Int
    /// `hop_length`.
    public var hopLength: Int
    /// `n_mels` for the mel spectrogram behind the MFCCs.
    public var nMels: Int
    /// `fmin`, `fmax` of the mel filter bank (fmax nil = sr / 2).
    public var fmin: Double
    public var fmax: Double?

    public static let mfccCount = 13
    public static let chromaCount = 12

    public init(
        sampleRate: Int = 8000, nFFT: Int = 512, winLength: Int = 400, hopLength: Int = 160,
        nMels: Int = 40, fmin: Double = 0, fmax: Double? = nil
    ) {
        self.sampleRate = sampleRate
        self.nFFT = nFFT
        self.winLength = winLength
        self.hopLength = hopLength
        self.nMels = nMels
        self.fmin = fmin
        self.fmax = fmax
    }

    public var effectiveFmax: Double { fmax ?? Double(sampleRate) / 2 }
    public var binCount: Int { nFFT / 2 + 1 }
    /// Seconds between frames.
    public var frameStep: Double { Double(hopLength) / Double(sampleRate) }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Rejects parameter sets librosa would reject or that make no sense for speech.
    public func validate() throws(Invalid) {
        func fail(_ s: String) -> Invalid { Invalid(description: s) }
        guard (1000...192_000).contains(sampleRate) else {
            throw fail("sample rate \(sampleRate) Hz is outside 1000...192000")
        }
        guard nFFT >= 16, nFFT <= 16384, nFFT % 2 == 0 else {
            throw fail("n-fft must be even and in 16...16384 (got \(nFFT))")
        }
        guard winLength >= 2, winLength <= nFFT else {
            throw fail("win-length must be in 2...n-fft (got \(winLength), n-fft \(nFFT))")
        }
        guard hopLength >= 1, hopLength <= nFFT else {
            throw fail("hop-length must be in 1...n-fft (got \(hopLength))")
        }
        guard nMels >= Self.mfccCount, nMels <= 512 else {
            throw fail("n-mels must be in \(Self.mfccCount)...512 (got \(nMels))")
        }
        guard fmin >= 0, fmin.isFinite else { throw fail("fmin must be >= 0 (got \(fmin))") }
        let top = effectiveFmax
        guard top.isFinite, top > fmin, top <= Double(sampleRate) / 2 else {
            throw fail("fmax must be in (fmin, sr/2] (got \(top), sr/2 = \(sampleRate / 2))")
        }
    }
}
