import Foundation

/// The frame-level network's inputs, built causally from each fully analysed frame as it arrives: what
/// `training/frame_model.py` builds from the exported frames (`build_features`), so the network sees live
/// exactly the numbers it was trained on.
///
/// Level-free: energy only relative to a decaying peak (and its delta); pitch in semitones, also relative
/// to a running mean over voiced frames; channel-like features minus a running mean over speech frames
/// (a cumulative mean with a warm start from the training set, then an exponential one); raw level-free
/// descriptors; for a network trained with `--mel`, also each frame's mel bands minus the same kind of
/// running mean (zero bands on a frame the gate turned down, as the gated export leaves them). Then
/// standardised with the training set's mean and scale.
public struct FrameNetInputs: Sendable {
    public static let channelColumns: [(String, Int)] =
        (1..<FeatureConfig.mfccCount).map { ("mfcc\($0)", FrameLayout.mfcc.lowerBound + $0) }
        + [
            ("zcr", FrameLayout.zcr), ("centroid", FrameLayout.centroid), ("rolloff", FrameLayout.rolloff),
            ("flatness", FrameLayout.flatness), ("slope", FrameLayout.slope),
            ("low_high_db", FrameLayout.lowHighRatio),
        ]
    public static let rawColumns: [(String, Int)] =
        [
            ("zcr", FrameLayout.zcr), ("centroid", FrameLayout.centroid), ("rolloff", FrameLayout.rolloff),
            ("flatness", FrameLayout.flatness), ("slope", FrameLayout.slope), ("flux", FrameLayout.flux),
            ("low_high_db", FrameLayout.lowHighRatio), ("voicing", FrameLayout.voicing),
        ] + (0..<FeatureConfig.chromaCount).map { ("chroma\($0)", FrameLayout.chroma.lowerBound + $0) }

    static let channelIndices = channelColumns.map(\.1)
    static let rawIndices = rawColumns.map(\.1)

    /// Input names in order, as the network file lists them (without mel bands).
    public static let names: [String] =
        ["e_rel_peak", "d_energy", "pitch_st", "pitch_st_rel", "d_pitch_st", "voiced"]
        + channelColumns.map { $0.0 + "_cn" } + rawColumns.map(\.0)
    public static var count: Int { names.count }

    /// The names of a network that also reads `melBands` mel bands.
    public static func names(melBands: Int) -> [String] { names + (0..<melBands).map { "mel\($0)_cn" } }

    /// Inputs per frame: `count` plus the mel bands.
    public var width: Int { Self.count + melPrior.count }
    /// The pitch inputs, 0 (the mean) on unvoiced frames.
    static let pitchInputs = 2...4

    // Constants of training/frame_model.py.
    static let peakDecayDB = 0.1
    static let priorFrames = 25.0
    static let timeConstantFrames = 125.0

    private let mean: [Float]
    /// 1 / the training set's scale: a multiply per input instead of a divide.
    private let inverseScale: [Float]
    private let pitchPrior: Double
    private let channelPrior: [Double]
    private let melPrior: [Double]

    private var peakDB = -Double.infinity
    private var previousEnergyDB: Double?
    private var previousSemitones: Float?
    private var pitchMean: Double
    private var pitchCount: Double
    private var channelMean: [Double]
    private var channelCount: Double
    private var melMean: [Double]

    /// `melPrior` empty: no mel band inputs.
    public init(mean: [Float], scale: [Float], pitchPrior: Double, channelPrior: [Double], melPrior: [Double] = []) {
        precondition(mean.count == Self.count + melPrior.count && scale.count == mean.count)
        precondition(channelPrior.count == Self.channelColumns.count)
        self.mean = mean
        inverseScale = scale.map { 1 / $0 }
        self.pitchPrior = pitchPrior
        self.channelPrior = channelPrior
        self.melPrior = melPrior
        pitchMean = pitchPrior
        pitchCount = Self.priorFrames
        channelMean = channelPrior
        channelCount = Self.priorFrames
        melMean = melPrior
    }

    /// Back to the warm start: a new leg.
    public mutating func reset() {
        peakDB = -.infinity
        previousEnergyDB = nil
        previousSemitones = nil
        pitchMean = pitchPrior
        pitchCount = Self.priorFrames
        for i in channelMean.indices { channelMean[i] = channelPrior[i] }
        for i in melMean.indices { melMean[i] = melPrior[i] }
        channelCount = Self.priorFrames
    }

    @inline(__always)
    private static func step(count: Double) -> Double { max(1 / timeConstantFrames, 1 / count) }

    /// Writes `width` standardised inputs for the next frame (`FrameLayout` values, and its mel bands
    /// when the network reads them: nil for a frame the gate turned down) into `out`.
    public mutating func build(
        frame: UnsafeBufferPointer<Float>, melBandsDB: UnsafeBufferPointer<Float>? = nil, speech: Bool,
        into out: UnsafeMutablePointer<Float>
    ) {
        let energy = Double(frame[FrameLayout.energyDB])
        peakDB = max(energy, peakDB - Self.peakDecayDB)
        out[0] = Float(min(0, max(-60, energy - peakDB)))
        out[1] = previousEnergyDB.map { Float(min(20, max(-20, energy - $0))) } ?? 0
        previousEnergyDB = energy

        let f0 = frame[FrameLayout.pitchHz]
        let voiced = f0 > 0
        var semitones: Float = 0
        if voiced {
            semitones = 12 * log2(max(f0, 1) / 55)
            pitchCount += 1
            pitchMean += Self.step(count: pitchCount) * (Double(semitones) - pitchMean)
        }
        out[2] = semitones
        out[3] = voiced ? semitones - Float(pitchMean) : 0
        if voiced, let previous = previousSemitones {
            out[4] = min(6, max(-6, semitones - previous))
        } else {
            out[4] = 0
        }
        previousSemitones = voiced ? semitones : nil
        out[5] = voiced ? 1 : 0

        if speech { channelCount += 1 }
        let a = speech ? Self.step(count: channelCount) : 0
        var k = 6
        // Through buffer pointers: per frame, element-wise access to the arrays would check uniqueness
        // and exclusivity on every write.
        Self.channelIndices.withUnsafeBufferPointer { columns in
            channelMean.withUnsafeMutableBufferPointer { means in
                for i in 0..<columns.count {
                    let x = Double(frame[columns[i]])
                    means[i] += a * (x - means[i])
                    // The training script keeps the running mean as float32 before subtracting.
                    out[k] = Float(x - Double(Float(means[i])))
                    k += 1
                }
            }
        }
        Self.rawIndices.withUnsafeBufferPointer { columns in
            for column in columns {
                out[k] = frame[column]
                k += 1
            }
        }
        if !melMean.isEmpty {
            // A frame the gate turned down (or, defensively, one with fewer bands) reads zero bands.
            let bands = melBandsDB.flatMap { $0.count >= melMean.count ? $0.baseAddress : nil }
            melMean.withUnsafeMutableBufferPointer { means in
                for i in 0..<means.count {
                    // The training script's bands are float32, and so is its running mean when subtracted.
                    let band = bands?[i] ?? 0
                    means[i] += a * (Double(band) - means[i])
                    out[k] = band - Float(means[i])
                    k += 1
                }
            }
        }
        let width = k
        mean.withUnsafeBufferPointer { mean in
            inverseScale.withUnsafeBufferPointer { inverseScale in
                for i in 0..<width { out[i] = (out[i] - mean[i]) * inverseScale[i] }
            }
        }
        if !voiced { for i in Self.pitchInputs { out[i] = 0 } }
    }
}
