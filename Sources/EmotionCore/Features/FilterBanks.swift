import Foundation

/// Filter banks and transforms built exactly as librosa 0.11 builds them (float64, then stored as Float).
enum FilterBanks {
    // MARK: Slaney mel scale (librosa `htk=False`)

    private static let melLinearStep = 200.0 / 3
    private static let melLogStartHz = 1000.0
    private static let melLogStart = melLogStartHz / melLinearStep
    private static let melLogStep = log(6.4) / 27

    static func hzToMel(_ hz: Double) -> Double {
        hz >= melLogStartHz ? melLogStart + log(hz / melLogStartHz) / melLogStep : hz / melLinearStep
    }

    static func melToHz(_ mel: Double) -> Double {
        mel >= melLogStart ? melLogStartHz * exp(melLogStep * (mel - melLogStart)) : melLinearStep * mel
    }

    /// `librosa.fft_frequencies`.
    static func fftFrequencies(sampleRate: Int, nFFT: Int) -> [Double] {
        (0...nFFT / 2).map { Double($0) * Double(sampleRate) / Double(nFFT) }
    }

    /// `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney")`, rows = mel bands.
    static func mel(_ c: FeatureConfig) -> [[Double]] {
        let fftFreqs = fftFrequencies(sampleRate: c.sampleRate, nFFT: c.nFFT)
        let lo = hzToMel(c.fmin), hi = hzToMel(c.effectiveFmax)
        let count = c.nMels + 2
        let melF = (0..<count).map { melToHz(lo + (hi - lo) * Double($0) / Double(count - 1)) }
        var weights = [[Double]](repeating: [Double](repeating: 0, count: fftFreqs.count), count: c.nMels)
        for m in 0..<c.nMels {
            let lowerWidth = melF[m + 1] - melF[m]
            let upperWidth = melF[m + 2] - melF[m + 1]
            let norm = 2 / (melF[m + 2] - melF[m])
            for (k, f) in fftFreqs.enumerated() {
                let lower = (f - melF[m]) / lowerWidth
                let upper = (melF[m + 2] - f) / upperWidth
                weights[m][k] = max(0, min(lower, upper)) * norm
            }
        }
        return weights
    }

    /// Centre frequency (Hz) of each mel band.
    static func melCentres(_ c: FeatureConfig) -> [Double] {
        let lo = hzToMel(c.fmin), hi = hzToMel(c.effectiveFmax)
        let count = c.nMels + 2
        return (1...c.nMels).map { melToHz(lo + (hi - lo) * Double($0) / Double(count - 1)) }
    }

    // MARK: Chroma (`librosa.filters.chroma`, tuning 0, ctroct 5, octwidth 2, norm 2, base_c)

    static func chroma(sampleRate: Int, nFFT: Int, nChroma: Int = 12) -> [[Double]] {
        let n = Double(nChroma)
        let a440 = 440.0
        // Bin centres in chroma units; the 0 Hz bin is put 1.5 octaves below bin 1, as librosa does.
        var frqbins = (1..<nFFT).map { k -> Double in
            let hz = Double(k) * Double(sampleRate) / Double(nFFT)
            return n * log2(hz / (a440 / 16))
        }
        frqbins.insert(frqbins[0] - 1.5 * n, at: 0)
        var binWidth = (0..<nFFT - 1).map { max(frqbins[$0 + 1] - frqbins[$0], 1) }
        binWidth.append(1)
        let half = (n / 2).rounded(.toNearestOrEven)
        var wts = [[Double]](repeating: [Double](repeating: 0, count: nFFT), count: nChroma)
        for k in 0..<nFFT {
            for c in 0..<nChroma {
                var d = frqbins[k] - Double(c)
                d = fmodPositive(d + half + 10 * n, n) - half
                wts[c][k] = exp(-0.5 * pow(2 * d / binWidth[k], 2))
            }
            // L2-normalise each column.
            let norm = sqrt((0..<nChroma).reduce(0) { $0 + wts[$1][k] * wts[$1][k] })
            if norm > Double.leastNormalMagnitude {
                for c in 0..<nChroma { wts[c][k] /= norm }
            }
            let octaveWeight = exp(-0.5 * pow((frqbins[k] / n - 5.0) / 2.0, 2))
            for c in 0..<nChroma { wts[c][k] *= octaveWeight }
        }
        // base_c: roll so that row 0 is C, not A.
        let shift = 3 * (nChroma / 12)
        let rolled = (0..<nChroma).map { wts[($0 + shift) % nChroma] }
        return rolled.map { Array($0[0...(nFFT / 2)]) }
    }

    /// numpy's `np.remainder` for a positive divisor.
    private static func fmodPositive(_ x: Double, _ m: Double) -> Double {
        let r = fmod(x, m)
        return r < 0 ? r + m : r
    }

    // MARK: Window and DCT

    /// Periodic Hann (`scipy.signal.get_window("hann", n, fftbins=True)`).
    static func hann(_ length: Int) -> [Double] {
        (0..<length).map { 0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(length)) }
    }

    /// Orthonormal DCT-II rows (`scipy.fftpack.dct(type=2, norm="ortho")`), first `count` of `size`.
    static func dct(count: Int, size: Int) -> [[Double]] {
        (0..<count).map { k in
            let scale = k == 0 ? sqrt(1 / Double(size)) : sqrt(2 / Double(size))
            return (0..<size).map { m in scale * cos(Double.pi * Double(k) * (2 * Double(m) + 1) / (2 * Double(size))) }
        }
    }
}
