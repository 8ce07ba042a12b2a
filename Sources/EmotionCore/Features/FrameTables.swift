import Synchronization

/// The constant tables of frame analysis for one `FeatureConfig`: window, bin frequencies, mel and chroma
/// filter banks, DCT, the spectral-shape bands and the pitch search's window correction. Built once per
/// configuration and shared, read-only, by every `FrameFeatureExtractor` (on any thread): the live path runs
/// one extractor per leg, and per-leg copies of these 20 kB would each have to come in from memory.
final class FrameTables: @unchecked Sendable {
    // @unchecked: every pointer is written in init and only read afterwards; the tables are never freed
    // (one per configuration in use, kept in `cache`).
    let window: UnsafeMutablePointer<Float>  // Hann(winLength)
    let windowOffset: Int  // where the window sits inside the n_fft frame
    let frequencies: UnsafeMutablePointer<Float>  // bin centre frequencies
    let melStart: UnsafeMutablePointer<Int>  // first bin of each mel band
    let melLength: UnsafeMutablePointer<Int>  // number of non-zero weights of each band
    let melOffset: UnsafeMutablePointer<Int>  // where each band's weights start in melWeights
    let melWeights: UnsafeMutablePointer<Float>
    let chromaWeights: UnsafeMutablePointer<Float>  // 12 x bins, row-major
    let dct: UnsafeMutablePointer<Float>  // 13 x nMels, row-major
    let shapeBands: Range<Int>  // mel bands centred in 250-3400 Hz
    let shapeX: UnsafeMutablePointer<Float>  // centred kHz of those bands, for the slope
    let shapeDenominator: Float
    let lowBandEnd: Int
    let pitchLags: ClosedRange<Int>
    /// The autocorrelation's transform size when the main FFT frame is too short to avoid wrap-around.
    let pitchFFTSize: Int?
    let inverseWindowAutocorrelation: UnsafeMutablePointer<Float>

    private static let cache = Mutex<[FeatureConfig: FrameTables]>([:])

    /// The tables of `config` (validated by the caller), built on first use.
    static func shared(for config: FeatureConfig) -> FrameTables {
        cache.withLock { cache in
            if let tables = cache[config] { return tables }
            let tables = FrameTables(config)
            cache[config] = tables
            return tables
        }
    }

    private init(_ config: FeatureConfig) {
        let n = config.nFFT
        let bins = config.binCount
        let hann = FilterBanks.hann(config.winLength).map { Float($0) }
        window = .copy(hann)
        windowOffset = (n - config.winLength) / 2
        let freqs = FilterBanks.fftFrequencies(sampleRate: config.sampleRate, nFFT: n)
        frequencies = .copy(freqs.map { Float($0) })

        let mel = FilterBanks.mel(config)
        var starts: [Int] = [], lengths: [Int] = [], offsets: [Int] = [], weights: [Float] = []
        for band in mel {
            let first = band.firstIndex { $0 > 0 } ?? 0
            let last = band.lastIndex { $0 > 0 } ?? (first - 1)
            starts.append(first)
            offsets.append(weights.count)
            lengths.append(last - first + 1)
            if last >= first { weights += band[first...last].map { Float($0) } }
        }
        melStart = .copy(starts)
        melLength = .copy(lengths)
        melOffset = .copy(offsets)
        melWeights = .copy(weights.isEmpty ? [0] : weights)
        chromaWeights = .copy(
            FilterBanks.chroma(sampleRate: config.sampleRate, nFFT: n).flatMap { $0.map { Float($0) } })
        dct = .copy(
            FilterBanks.dct(count: FeatureConfig.mfccCount, size: config.nMels).flatMap { $0.map { Float($0) } })

        // Spectral shape over the telephone band, on the mel bands already computed.
        let centres = FilterBanks.melCentres(config)
        let inBand = centres.indices.filter { centres[$0] >= 250 && centres[$0] <= 3400 }
        shapeBands = inBand.count >= 2 ? inBand.first!..<(inBand.last! + 1) : 0..<config.nMels
        let xs = shapeBands.map { centres[$0] / 1000 }
        let mean = xs.reduce(0, +) / Double(xs.count)
        shapeX = .copy(xs.map { Float($0 - mean) })
        shapeDenominator = Float(max(xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }, 1e-9))
        lowBandEnd = freqs.firstIndex { $0 >= 1000 } ?? bins

        // Pitch by autocorrelation (Boersma 1993), the frame's ACF divided by the window's.
        let minLag = max(2, config.sampleRate / 400)
        let maxLag = max(minLag + 2, min(config.sampleRate / 60, config.winLength / 2))
        pitchLags = minLag...maxLag
        // The main FFT's circular ACF is clean when wrapped lags only meet the window's outer tapers.
        let acfSize: Int
        if Double(n - maxLag) >= 0.9 * Double(config.winLength) {
            pitchFFTSize = nil
            acfSize = n
        } else {
            var size = 1
            while size < config.winLength + maxLag + 1 { size *= 2 }
            pitchFFTSize = size
            acfSize = size
        }
        var padded = [Double](repeating: 0, count: acfSize)
        let padOffset = pitchFFTSize == nil ? windowOffset : 0
        for i in 0..<config.winLength { padded[padOffset + i] = Double(hann[i]) }
        var wacf = [Float](repeating: 0, count: maxLag + 2)
        for lag in 0..<wacf.count {
            var s = 0.0
            for i in 0..<acfSize { s += padded[i] * padded[(i + lag) % acfSize] }
            wacf[lag] = Float(s)
        }
        let w0 = max(wacf[0], .leastNormalMagnitude)
        inverseWindowAutocorrelation = .copy(wacf.map { 1 / max($0 / w0, 1e-6) })
    }
}
