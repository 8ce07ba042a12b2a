import Foundation

/// Streaming per-frame features: push audio in chunks of any size, frames come out as soon as they are complete.
///
/// Frame `i` covers the same samples as librosa's `center=True` framing (the signal padded with
/// `n_fft / 2` samples at both ends: zeros for the spectral features and RMS, the edge sample for
/// the zero-crossing rate), so the output equals one whole-file pass whatever the chunk boundaries.
/// After setup nothing here allocates.
public final class FrameFeatureExtractor {
    public let config: FeatureConfig

    // MARK: Constant tables
    private let window: [Float]            // Hann(winLength)
    private let windowOffset: Int          // where the window sits inside the n_fft frame
    private let frequencies: [Float]       // bin centre frequencies
    private let melStart: [Int]            // first bin of each mel band
    private let melWeights: [[Float]]      // non-zero weights of each band, from melStart
    private let chromaWeights: [Float]     // 12 x bins, row-major
    private let dct: [Float]               // 13 x nMels, row-major
    private let slopeBins: Range<Int>
    private let slopeX: [Float]            // centred kHz for the slope regression
    private let slopeDenominator: Float
    private let lowBandEnd: Int
    private let pitchLags: ClosedRange<Int>
    private let windowAutocorrelation: [Float]

    // MARK: Streaming state
    private let capacity: Int
    private var buffer: [Float]            // padded signal from absolute padded index `base`
    private var count = 0
    private var base = 0
    private var nextFrame = 0
    private var received = 0               // real samples pushed
    private var finished = false
    private var realEnd = Int.max          // padded index where the real signal ends (known at finish)

    // MARK: Scratch
    private let fft: RealFFT
    private let pitchFFT: RealFFT
    private var power: [Float]
    private var magnitude: [Float]
    private var previousShape: [Float]
    private var hasPrevious = false
    private var melEnergy: [Float]
    private var row: [Float]

    public init(config: FeatureConfig = FeatureConfig()) throws(FeatureConfig.Invalid) {
        try config.validate()
        self.config = config
        let bins = config.binCount
        window = FilterBanks.hann(config.winLength).map { Float($0) }
        windowOffset = (config.nFFT - config.winLength) / 2
        let freqs = FilterBanks.fftFrequencies(sampleRate: config.sampleRate, nFFT: config.nFFT)
        frequencies = freqs.map { Float($0) }

        let mel = FilterBanks.mel(config)
        var starts: [Int] = [], weights: [[Float]] = []
        for band in mel {
            let first = band.firstIndex { $0 > 0 } ?? 0
            let last = band.lastIndex { $0 > 0 } ?? -1
            starts.append(first)
            weights.append(last >= first ? band[first...last].map { Float($0) } : [])
        }
        melStart = starts
        melWeights = weights
        chromaWeights = FilterBanks.chroma(sampleRate: config.sampleRate, nFFT: config.nFFT).flatMap { $0.map { Float($0) } }
        dct = FilterBanks.dct(count: FeatureConfig.mfccCount, size: config.nMels).flatMap { $0.map { Float($0) } }

        let lo = freqs.firstIndex { $0 >= 250 } ?? 0
        let hi = (freqs.lastIndex { $0 <= 3400 } ?? bins - 1) + 1
        slopeBins = lo..<min(max(hi, lo + 2), bins)
        let xs = slopeBins.map { freqs[min($0, bins - 1)] / 1000 }
        let mean = xs.reduce(0, +) / Double(xs.count)
        slopeX = xs.map { Float($0 - mean) }
        slopeDenominator = Float(xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) })
        lowBandEnd = freqs.firstIndex { $0 >= 1000 } ?? bins

        // Pitch by autocorrelation (Boersma 1993): linear ACF through a zero-padded FFT, divided by the window's ACF.
        var pitchSize = 1
        while pitchSize < 2 * config.winLength { pitchSize *= 2 }
        pitchFFT = RealFFT(size: pitchSize)
        let minLag = max(2, config.sampleRate / 400)
        let maxLag = max(minLag + 1, min(config.sampleRate / 60, config.winLength / 2))
        pitchLags = minLag...maxLag
        var wacf = [Float](repeating: 0, count: maxLag + 2)
        for lag in 0..<wacf.count where lag < config.winLength {
            var s = 0.0
            for n in 0..<(config.winLength - lag) { s += Double(window[n]) * Double(window[n + lag]) }
            wacf[lag] = Float(s)
        }
        windowAutocorrelation = wacf.map { $0 / max(wacf[0], .leastNormalMagnitude) }

        fft = RealFFT(size: config.nFFT)
        capacity = 2 * config.nFFT + config.hopLength
        buffer = [Float](repeating: 0, count: capacity)
        power = [Float](repeating: 0, count: bins)
        magnitude = [Float](repeating: 0, count: bins)
        previousShape = [Float](repeating: 0, count: bins)
        melEnergy = [Float](repeating: 0, count: config.nMels)
        row = [Float](repeating: 0, count: FrameLayout.count)
        reset()
    }

    /// Starts a new stream (the left padding is laid in again).
    public func reset() {
        for i in 0..<capacity { buffer[i] = 0 }
        count = config.nFFT / 2
        base = 0
        nextFrame = 0
        received = 0
        finished = false
        realEnd = Int.max
        hasPrevious = false
    }

    /// Number of frames a whole pass over `sampleCount` samples yields (librosa's count with center=True).
    public func frameCount(forSamples sampleCount: Int) -> Int {
        sampleCount == 0 ? 0 : 1 + sampleCount / config.hopLength
    }

    public var samplesReceived: Int { received }

    /// Feeds audio; `onFrame` is called for every frame completed by it.
    public func push(_ samples: UnsafeBufferPointer<Float>, onFrame: (FrameView) -> Void) {
        precondition(!finished, "push after finish: call reset() to start a new stream")
        var offset = 0
        while offset < samples.count {
            let take = min(capacity - count, samples.count - offset)
            buffer.withUnsafeMutableBufferPointer { b in
                _ = UnsafeMutableBufferPointer(rebasing: b[count..<count + take])
                    .initialize(from: UnsafeBufferPointer(rebasing: samples[offset..<offset + take]))
            }
            count += take
            offset += take
            received += take
            drainFrames(onFrame)
        }
    }

    public func push(_ samples: [Float], onFrame: (FrameView) -> Void) {
        samples.withUnsafeBufferPointer { push($0, onFrame: onFrame) }
    }

    /// Ends the stream: the right padding is added and the last frames come out.
    public func finish(onFrame: (FrameView) -> Void) {
        guard !finished else { return }
        finished = true
        guard received > 0 else { return }
        realEnd = config.nFFT / 2 + received
        var padding = config.nFFT / 2
        while padding > 0 {
            let take = min(capacity - count, padding)
            for i in count..<count + take { buffer[i] = 0 }
            count += take
            padding -= take
            drainFrames(onFrame)
        }
    }

    // MARK: Framing

    private func drainFrames(_ onFrame: (FrameView) -> Void) {
        let n = config.nFFT
        while nextFrame * config.hopLength + n <= base + count {
            let start = nextFrame * config.hopLength - base
            analyse(frameAt: start, paddedStart: nextFrame * config.hopLength)
            row.withUnsafeBufferPointer { values in
                onFrame(FrameView(index: nextFrame, time: Double(nextFrame) * config.frameStep, values: values))
            }
            nextFrame += 1
        }
        // Keep only what the next frame still needs.
        let drop = min(nextFrame * config.hopLength - base, count)
        if drop > 0 {
            buffer.withUnsafeMutableBufferPointer { b in
                let p = b.baseAddress!
                p.update(from: p + drop, count: count - drop)
            }
            count -= drop
            base += drop
        }
    }

    // MARK: Per-frame analysis

    private func analyse(frameAt start: Int, paddedStart: Int) {
        let n = config.nFFT
        let bins = config.binCount
        buffer.withUnsafeBufferPointer { b in
            let frame = b.baseAddress! + start
            // RMS over the unwindowed frame, zeros as padding (librosa.feature.rms).
            var sumSquares: Float = 0
            for i in 0..<n { sumSquares += frame[i] * frame[i] }
            let meanSquare = sumSquares / Float(n)
            row[FrameLayout.rms] = meanSquare.squareRoot()
            row[FrameLayout.energyDB] = 10 * log10(meanSquare + 1e-10)

            // Zero crossings between neighbours that both lie in the real signal (edge padding adds none).
            let realStart = n / 2
            let first = max(paddedStart + 1, realStart + 1) - paddedStart
            let last = min(paddedStart + n, realEnd) - paddedStart
            var crossings = 0
            if first < last {
                var previousNegative = frame[first - 1] < -1e-10
                for i in first..<last {
                    let negative = frame[i] < -1e-10
                    if negative != previousNegative { crossings += 1 }
                    previousNegative = negative
                }
            }
            row[FrameLayout.zcr] = Float(crossings) / Float(n)

            // Windowed FFT frame.
            let input = fft.input
            for i in 0..<windowOffset { input[i] = 0 }
            for i in 0..<config.winLength { input[windowOffset + i] = frame[windowOffset + i] * window[i] }
            for i in (windowOffset + config.winLength)..<n { input[i] = 0 }

            // Pitch input: the same windowed samples, zero-padded for a linear autocorrelation.
            let pitchInput = pitchFFT.input
            for i in 0..<config.winLength { pitchInput[i] = input[windowOffset + i] }
            for i in config.winLength..<pitchFFT.size { pitchInput[i] = 0 }
        }
        fft.forwardTransform()
        let spectrum = fft.output
        var magnitudeSum: Float = 0, weightedSum: Float = 0
        for k in 0..<bins {
            let re = spectrum[2 * k], im = spectrum[2 * k + 1]
            let p = re * re + im * im
            power[k] = p
            let m = p.squareRoot()
            magnitude[k] = m
            magnitudeSum += m
            weightedSum += m * frequencies[k]
        }
        // librosa.util.normalize leaves an all-zero column as it is, so silence has centroid 0.
        row[FrameLayout.centroid] = magnitudeSum > Float.leastNormalMagnitude ? weightedSum / magnitudeSum : 0

        melAndMFCC()
        chroma()
        spectralShape(magnitudeSum: magnitudeSum)
        pitch()
    }

    private func melAndMFCC() {
        let nMels = config.nMels
        power.withUnsafeBufferPointer { p in
            for m in 0..<nMels {
                let w = melWeights[m]
                let s = melStart[m]
                var e: Float = 0
                for j in 0..<w.count { e += w[j] * p[s + j] }
                // power_to_db(M, ref=1, amin=1e-10, top_db=None)
                melEnergy[m] = 10 * log10(max(e, 1e-10))
            }
        }
        for c in 0..<FeatureConfig.mfccCount {
            var s: Float = 0
            let rowBase = c * nMels
            for m in 0..<nMels { s += dct[rowBase + m] * melEnergy[m] }
            row[FrameLayout.mfcc.lowerBound + c] = s
        }
    }

    private func chroma() {
        let bins = config.binCount
        var peak: Float = 0
        power.withUnsafeBufferPointer { p in
            chromaWeights.withUnsafeBufferPointer { w in
                for c in 0..<FeatureConfig.chromaCount {
                    var s: Float = 0
                    let rowBase = c * bins
                    for k in 0..<bins { s += w[rowBase + k] * p[k] }
                    row[FrameLayout.chroma.lowerBound + c] = s
                    peak = max(peak, abs(s))
                }
            }
        }
        // norm=inf per frame; an all-zero frame stays zero.
        if peak > Float.leastNormalMagnitude {
            for c in FrameLayout.chroma { row[c] /= peak }
        }
    }

    private func spectralShape(magnitudeSum: Float) {
        let bins = config.binCount
        // Roll-off at 85 % of the magnitude.
        var rolloff: Float = 0
        if magnitudeSum > 0 {
            let target = 0.85 * magnitudeSum
            var cumulative: Float = 0
            for k in 0..<bins {
                cumulative += magnitude[k]
                if cumulative >= target { rolloff = frequencies[k]; break }
            }
        }
        row[FrameLayout.rolloff] = rolloff
        // Flatness and slope over the telephone band only: out-of-band bins hold nothing but the
        // codec's noise floor, which would make both depend on the line's gain.
        var powerSum: Float = 0, logPowerSum: Float = 0, numerator: Float = 0
        for (j, k) in slopeBins.enumerated() {
            let p = max(power[k], 1e-10)
            powerSum += p
            let l = log(p)
            logPowerSum += l
            numerator += slopeX[j] * l
        }
        let n = Float(slopeBins.count)
        row[FrameLayout.flatness] = exp(logPowerSum / n) / (powerSum / n)
        // Regression on natural-log power, expressed in dB (10 / ln 10) per kHz; slopeX is centred.
        row[FrameLayout.slope] = numerator / slopeDenominator * (10 / log(10))

        var low: Float = 0, high: Float = 0
        for k in 0..<lowBandEnd { low += power[k] }
        for k in lowBandEnd..<bins { high += power[k] }
        row[FrameLayout.lowHighRatio] = 10 * log10((low + 1e-10) / (high + 1e-10))

        var flux: Float = 0
        let scale: Float = magnitudeSum > 0 ? 1 / magnitudeSum : 0
        for k in 0..<bins {
            let shape = magnitude[k] * scale
            if hasPrevious { flux += abs(shape - previousShape[k]) }
            previousShape[k] = shape
        }
        row[FrameLayout.flux] = hasPrevious ? flux / 2 : 0
        hasPrevious = true
    }

    private func pitch() {
        pitchFFT.forwardTransform()
        let spectrum = pitchFFT.output
        let half = pitchFFT.size / 2
        for k in 0...half {
            let re = spectrum[2 * k], im = spectrum[2 * k + 1]
            spectrum[2 * k] = re * re + im * im
            spectrum[2 * k + 1] = 0
        }
        pitchFFT.inverseTransform()
        let acf = pitchFFT.input
        let zero = acf[0]
        var bestLag = 0
        var best: Float = 0
        if zero > 1e-9 * Float(pitchFFT.size) {
            for lag in pitchLags {
                let r = (acf[lag] / zero) / windowAutocorrelation[lag]
                if r > best { best = r; bestLag = lag }
            }
        }
        // Octave errors: a period's multiples correlate almost as well, so take the shortest lag
        // whose local peak comes close to the best one.
        if bestLag > pitchLags.lowerBound + 1 {
            for lag in (pitchLags.lowerBound + 1)..<bestLag {
                let r = (acf[lag] / zero) / windowAutocorrelation[lag]
                let before = (acf[lag - 1] / zero) / windowAutocorrelation[lag - 1]
                let after = (acf[lag + 1] / zero) / windowAutocorrelation[lag + 1]
                if r >= before, r >= after, r >= 0.9 * best { best = r; bestLag = lag; break }
            }
        }
        var f0: Float = 0
        if bestLag > 0, best >= 0.5, bestLag > pitchLags.lowerBound, bestLag < pitchLags.upperBound {
            // Parabolic interpolation around the peak.
            let a = (acf[bestLag - 1] / zero) / windowAutocorrelation[bestLag - 1]
            let c = (acf[bestLag + 1] / zero) / windowAutocorrelation[bestLag + 1]
            let denominator = a - 2 * best + c
            let shift = denominator < 0 ? 0.5 * (a - c) / denominator : 0
            f0 = Float(config.sampleRate) / (Float(bestLag) + max(-0.5, min(0.5, shift)))
        }
        row[FrameLayout.voicing] = min(max(best, 0), 1)
        row[FrameLayout.pitchHz] = f0
    }
}

extension FrameFeatureExtractor {
    /// All frames of a whole signal as rows of `FrameLayout.count` values (batch convenience).
    public func extractAll(_ samples: [Float]) -> [[Float]] {
        reset()
        var rows: [[Float]] = []
        rows.reserveCapacity(frameCount(forSamples: samples.count))
        push(samples) { rows.append(Array($0.values)) }
        finish { rows.append(Array($0.values)) }
        return rows
    }
}
