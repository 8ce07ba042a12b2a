import Foundation

/// Streaming per-frame features: push audio in chunks of any size, frames come out as soon as they are complete.
///
/// Frame `i` covers the same samples as librosa's `center=True` framing (the signal padded with
/// `n_fft / 2` samples at both ends: zeros for the spectral features and RMS, the edge sample for
/// the zero-crossing rate), so the output equals one whole-file pass whatever the chunk boundaries.
///
/// Every scratch buffer is allocated once in `init` and held as a raw pointer, and the constant tables
/// (`FrameTables`) are one copy per configuration for all extractors: the per-frame path does no
/// allocation, no bounds or exclusivity checks, no reference counting, and a thousand legs share 20 kB
/// of tables that stay in cache instead of bringing their own copies in from memory every frame.
public final class FrameFeatureExtractor {
    public let config: FeatureConfig
    private let bins: Int

    /// The constant tables, shared by every extractor of this configuration (read-only).
    private let tables: FrameTables

    // MARK: Streaming state
    private let capacity: Int
    private let buffer: UnsafeMutablePointer<Float>  // padded signal from absolute padded index `base`
    private var count = 0
    private var base = 0
    private var nextFrame = 0
    private var received = 0  // real samples pushed
    private var finished = false
    private var realEnd = Int.max  // padded index where the real signal ends (known at finish)
    private var hasPrevious = false

    /// Asked with each frame's level (dB re full scale) whether the frame needs its whole analysis.
    /// A frame turned down gets RMS, energy, ZCR, centroid and flux (the spectrum the next frame's flux
    /// needs); its MFCC, chroma, pitch and spectral shape stay zero. The window layer sets this to its
    /// speech gate, since windows read only speech frames: silence then costs about half as much.
    /// Nil (the default) analyses every frame, as librosa does.
    public var needsFullAnalysis: ((Float) -> Bool)?

    // MARK: Scratch
    private let fft: RealFFT
    /// A separate, larger transform for the autocorrelation when the main FFT frame is too short to avoid wrap-around.
    private let pitchFFT: RealFFT?
    private let power: UnsafeMutablePointer<Float>
    private let magnitude: UnsafeMutablePointer<Float>
    private let previousShape: UnsafeMutablePointer<Float>
    private let melEnergy: UnsafeMutablePointer<Float>  // mel bands in dB
    private let melPower: UnsafeMutablePointer<Float>  // the same as power (floored at 1e-10)
    private let row: UnsafeMutablePointer<Float>

    public init(config: FeatureConfig = FeatureConfig()) throws(FeatureConfig.Invalid) {
        try config.validate()
        self.config = config
        bins = config.binCount
        let n = config.nFFT
        tables = FrameTables.shared(for: config)
        pitchFFT = tables.pitchFFTSize.map { RealFFT(size: $0) }

        fft = RealFFT(size: n)
        capacity = 2 * n + config.hopLength
        buffer = .zeroed(capacity)
        power = .zeroed(bins)
        magnitude = .zeroed(bins)
        previousShape = .zeroed(bins)
        melEnergy = .zeroed(config.nMels)
        melPower = .zeroed(config.nMels)
        row = .zeroed(FrameLayout.count)
        reset()
    }

    deinit {
        for p in [buffer, power, magnitude, previousShape, melEnergy, melPower, row] { p.deallocate() }
    }

    /// Starts a new stream (the left padding is laid in again).
    public func reset() {
        buffer.update(repeating: 0, count: capacity)
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
        guard let source = samples.baseAddress else { return }
        var offset = 0
        while offset < samples.count {
            let take = min(capacity - count, samples.count - offset)
            (buffer + count).update(from: source + offset, count: take)
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
            (buffer + count).update(repeating: 0, count: take)
            count += take
            padding -= take
            drainFrames(onFrame)
        }
    }

    // MARK: Framing

    private func drainFrames(_ onFrame: (FrameView) -> Void) {
        let n = config.nFFT, hop = config.hopLength
        let gate = needsFullAnalysis  // once per push, not per frame
        while nextFrame * hop + n <= base + count {
            let full = analyse(frame: buffer + (nextFrame * hop - base), paddedStart: nextFrame * hop, gate: gate)
            onFrame(
                FrameView(
                    index: nextFrame, time: Double(nextFrame) * config.frameStep,
                    values: UnsafeBufferPointer(start: row, count: FrameLayout.count),
                    melBandsDB: full ? UnsafeBufferPointer(start: melEnergy, count: config.nMels) : nil))
            nextFrame += 1
        }
        // Keep only what the next frame still needs.
        let drop = min(nextFrame * hop - base, count)
        if drop > 0 {
            buffer.update(from: buffer + drop, count: count - drop)
            count -= drop
            base += drop
        }
    }

    // MARK: Per-frame analysis

    /// Analyses one frame into `row`; false when the gate turned it down (only its cheap columns are set).
    private func analyse(frame: UnsafeMutablePointer<Float>, paddedStart: Int, gate: ((Float) -> Bool)?) -> Bool {
        let n = config.nFFT
        // RMS over the unwindowed frame, zeros as padding (librosa.feature.rms).
        let meanSquare = VectorMath.dot(frame, frame, n) / Float(n)
        let energyDB = 10 * log10(meanSquare + 1e-10)
        row[FrameLayout.rms] = meanSquare.squareRoot()
        row[FrameLayout.energyDB] = energyDB
        let full = gate?(energyDB) ?? true

        // Zero crossings between neighbours that both lie in the real signal (edge padding adds none).
        let realStart = n / 2
        let first = max(paddedStart + 1, realStart + 1) - paddedStart
        let last = min(paddedStart + n, realEnd) - paddedStart
        let crossings = first < last ? VectorMath.signChanges(frame, from: first, to: last, threshold: -1e-10) : 0
        row[FrameLayout.zcr] = Float(crossings) / Float(n)

        // Windowed FFT frame.
        let windowOffset = tables.windowOffset
        let input = fft.input
        let winLength = config.winLength
        input.update(repeating: 0, count: windowOffset)
        VectorMath.multiply(frame + windowOffset, tables.window, into: input + windowOffset, winLength)
        (input + windowOffset + winLength).update(repeating: 0, count: n - windowOffset - winLength)
        if full, let pitchFFT {
            pitchFFT.input.update(from: input + windowOffset, count: winLength)
            (pitchFFT.input + winLength).update(repeating: 0, count: pitchFFT.size - winLength)
        }
        fft.forwardTransform()

        let spectrum = UnsafeRawPointer(fft.output)
        let powerBytes = UnsafeMutableRawPointer(power), magnitudeBytes = UnsafeMutableRawPointer(magnitude)
        var k = 0
        while k &+ 4 <= bins {
            // Four interleaved (re, im) pairs at a time.
            let pairs = spectrum.loadUnaligned(fromByteOffset: k &* 8, as: SIMD8<Float>.self)
            let re = pairs.evenHalf, im = pairs.oddHalf
            let p = re * re + im * im
            powerBytes.storeBytes(of: p, toByteOffset: k &* 4, as: SIMD4<Float>.self)
            magnitudeBytes.storeBytes(of: p.squareRoot(), toByteOffset: k &* 4, as: SIMD4<Float>.self)
            k &+= 4
        }
        while k < bins {
            let re = fft.output[2 * k], im = fft.output[2 * k + 1]
            let p = re * re + im * im
            power[k] = p
            magnitude[k] = p.squareRoot()
            k &+= 1
        }
        let magnitudeSum = VectorMath.sum(magnitude, bins)
        let weightedSum = VectorMath.dot(magnitude, tables.frequencies, bins)
        // librosa.util.normalize leaves an all-zero column as it is, so silence has centroid 0.
        row[FrameLayout.centroid] = magnitudeSum > Float.leastNormalMagnitude ? weightedSum / magnitudeSum : 0

        spectralFlux(magnitudeSum: magnitudeSum)
        guard full else {
            clear(FrameLayout.mfcc)
            clear(FrameLayout.chroma)
            clear(FrameLayout.pitchHz..<FrameLayout.flux)
            clear(FrameLayout.lowHighRatio..<FrameLayout.count)
            return false
        }
        melAndMFCC()
        chroma()
        spectralShape(magnitudeSum: magnitudeSum)
        pitch()
        return true
    }

    @inline(__always) private func clear(_ range: Range<Int>) {
        (row + range.lowerBound).update(repeating: 0, count: range.count)
    }

    private func melAndMFCC() {
        let nMels = config.nMels
        for m in 0..<nMels {
            let e = max(
                VectorMath.dot(
                    tables.melWeights + tables.melOffset[m], power + tables.melStart[m], tables.melLength[m]), 1e-10)
            // power_to_db(M, ref=1, amin=1e-10, top_db=None); the power itself is kept for the shape.
            melPower[m] = e
            melEnergy[m] = 10 * log10(e)
        }
        for c in 0..<FeatureConfig.mfccCount {
            row[FrameLayout.mfcc.lowerBound + c] = VectorMath.dot(tables.dct + c * nMels, melEnergy, nMels)
        }
    }

    private func chroma() {
        var peak: Float = 0
        let out = row + FrameLayout.chroma.lowerBound
        for c in 0..<FeatureConfig.chromaCount {
            let s = VectorMath.dot(tables.chromaWeights + c * bins, power, bins)
            out[c] = s
            peak = max(peak, abs(s))
        }
        // norm=inf per frame; an all-zero frame stays zero.
        if peak > Float.leastNormalMagnitude {
            let scale = 1 / peak
            for c in 0..<FeatureConfig.chromaCount { out[c] *= scale }
        }
    }

    private func spectralShape(magnitudeSum: Float) {
        // Roll-off at 85 % of the magnitude.
        var rolloff: Float = 0
        if magnitudeSum > 0 {
            let target = 0.85 * magnitudeSum
            var cumulative: Float = 0
            for k in 0..<bins {
                cumulative += magnitude[k]
                if cumulative >= target { rolloff = tables.frequencies[k]; break }
            }
        }
        row[FrameLayout.rolloff] = rolloff

        // Flatness and slope over the telephone band's mel bands: out-of-band bands hold nothing but the
        // codec's noise floor, which would make both depend on the line's gain.
        var linearSum: Float = 0, dbSum: Float = 0, numerator: Float = 0
        for (j, m) in tables.shapeBands.enumerated() {
            let db = melEnergy[m]
            dbSum += db
            linearSum += melPower[m]
            numerator += tables.shapeX[j] * db
        }
        let count = Float(tables.shapeBands.count)
        // Geometric over arithmetic mean, from the dB values: 10^(mean dB / 10) / mean linear.
        row[FrameLayout.flatness] = pow(10, dbSum / count / 10) / max(linearSum / count, 1e-30)
        row[FrameLayout.slope] = numerator / tables.shapeDenominator

        let low = VectorMath.sum(power, tables.lowBandEnd)
        let high = VectorMath.sum(power + tables.lowBandEnd, bins - tables.lowBandEnd)
        row[FrameLayout.lowHighRatio] = 10 * log10((low + 1e-10) / (high + 1e-10))
    }

    /// Half the L1 distance to the previous frame's normalised magnitude spectrum (kept for the next frame).
    private func spectralFlux(magnitudeSum: Float) {
        let scale: Float = magnitudeSum > 0 ? 1 / magnitudeSum : 0
        let flux = VectorMath.absoluteChange(magnitude, scale: scale, previous: previousShape, bins)
        row[FrameLayout.flux] = hasPrevious ? flux / 2 : 0
        hasPrevious = true
    }

    private func pitch() {
        // Autocorrelation = inverse FFT of the power spectrum.
        let transform: RealFFT
        if let pitchFFT {
            transform = pitchFFT
            pitchFFT.forwardTransform()
            let s = pitchFFT.output
            for k in 0...(pitchFFT.size / 2) {
                s[2 * k] = s[2 * k] * s[2 * k] + s[2 * k + 1] * s[2 * k + 1]
                s[2 * k + 1] = 0
            }
        } else {
            transform = fft
            let s = fft.output
            for k in 0..<bins {
                s[2 * k] = power[k]
                s[2 * k + 1] = 0
            }
        }
        transform.inverseTransform()
        let acf = transform.input
        let zero = acf[0]
        let inverseZero = 1 / zero
        let inverseWindowAutocorrelation = tables.inverseWindowAutocorrelation, pitchLags = tables.pitchLags
        @inline(__always) func r(_ lag: Int) -> Float { acf[lag] * inverseZero * inverseWindowAutocorrelation[lag] }

        var bestLag = 0
        var best: Float = 0
        if zero > 1e-9 * Float(transform.size) {
            for lag in pitchLags {
                let v = r(lag)
                if v > best { best = v; bestLag = lag }
            }
        }
        // Octave errors: a period's multiples correlate almost as well, so take the shortest lag
        // whose local peak comes close to the best one.
        if bestLag > pitchLags.lowerBound + 1 {
            for lag in (pitchLags.lowerBound + 1)..<bestLag {
                let v = r(lag)
                if v >= r(lag - 1), v >= r(lag + 1), v >= 0.9 * best { best = v; bestLag = lag; break }
            }
        }
        var f0: Float = 0
        if bestLag > pitchLags.lowerBound, bestLag < pitchLags.upperBound, best >= 0.5 {
            // Parabolic interpolation around the peak.
            let a = r(bestLag - 1), c = r(bestLag + 1)
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

extension UnsafeMutablePointer {
    /// A new allocation holding a copy of `values`.
    static func copy(_ values: [Pointee]) -> UnsafeMutablePointer<Pointee> {
        let p = UnsafeMutablePointer<Pointee>.allocate(capacity: Swift.max(values.count, 1))
        values.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: values.count) }
        return p
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    static func zeroed(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
        p.initialize(repeating: 0, count: count)
        return p
    }
}
