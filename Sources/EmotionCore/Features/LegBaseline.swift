import Foundation

/// Per-leg normalisation: channel-like window statistics (cepstra, spectral shape, pitch, level) taken
/// relative to the leg's own slow running mean, so that a caller's phone, voice and line level stop
/// looking like emotion. The model sees these beside the absolute values.
///
/// No look-ahead: a window is compared with the baseline of the windows before it, then updates it. A
/// new leg starts from the training corpus's means (level has none: it starts at the first window).
public struct LegNormalization: Codable, Sendable, Equatable {
    /// Window vector entries tracked, by name; `LegNormalization.level` is the window's median speech level.
    public var tracked: [String]
    /// Corpus mean of each tracked entry (the warm start; ignored for the level, which depends on the line).
    public var priorMean: PackedFloats
    /// Weight of the warm start, in seconds of speech.
    public var priorSeconds: Double
    /// Once this much speech is in, the baseline is an exponential moving average with this time constant.
    public var timeConstantSeconds: Double

    public static let level = "level_db"

    /// The default choice: spectral shape, cepstra, pitch and level.
    public static let defaultTracked: [String] =
        ["zcr_mean", "centroid_mean"] + (1..<FeatureConfig.mfccCount).map { "mfcc\($0)_mean" }
        + ["voicing_mean", "rolloff_mean", "flatness_mean", "slope_mean", "low_high_db_mean", "pitch_st_p50", level]

    public init(tracked: [String], priorMean: [Float], priorSeconds: Double = 10, timeConstantSeconds: Double = 30) {
        self.tracked = tracked
        self.priorMean = PackedFloats(priorMean)
        self.priorSeconds = priorSeconds
        self.timeConstantSeconds = timeConstantSeconds
    }

    /// The model inputs these add after the window vector.
    public var inputNames: [String] { tracked.map { "leg_rel_\($0)" } }

    /// Where each tracked entry sits in the window vector (-1 for the level), or nil if one is unknown.
    public var vectorIndices: [Int]? {
        var out: [Int] = []
        for name in tracked {
            if name == Self.level { out.append(-1); continue }
            guard let i = WindowVector.names.firstIndex(of: name) else { return nil }
            out.append(i)
        }
        return out
    }
}

/// One leg's running baseline for `LegNormalization`.
public struct LegBaseline: Sendable {
    public let normalization: LegNormalization
    private let indices: [Int]
    private var mean: [Float]
    private var weight: [Double]

    public init(_ normalization: LegNormalization) {
        self.normalization = normalization
        indices = normalization.vectorIndices ?? []
        mean = normalization.priorMean.values
        weight = indices.map { $0 < 0 ? 0 : normalization.priorSeconds }
    }

    public var count: Int { indices.count }

    public mutating func reset() { self = LegBaseline(normalization) }

    /// Writes the window's values relative to the baseline into `out` (`count` floats), then takes the
    /// window into the baseline.
    public mutating func relative(
        vector: UnsafePointer<Float>, levelDB: Float, speechSeconds: Double, into out: UnsafeMutablePointer<Float>
    ) {
        let s = max(speechSeconds, 1e-3)
        for k in 0..<indices.count {
            let x = indices[k] < 0 ? levelDB : vector[indices[k]]
            if weight[k] == 0 { mean[k] = x }
            out[k] = x - mean[k]
            let w = min(weight[k] + s, normalization.timeConstantSeconds)
            mean[k] += Float(s / w) * (x - mean[k])
            weight[k] = w
        }
    }

    /// The same on arrays: the relative values go into `out[offset..<offset + count]`.
    public mutating func relative(
        vector: [Float], levelDB: Float, speechSeconds: Double, into out: inout [Float], at offset: Int = 0
    ) {
        precondition(out.count >= offset + count, "room for \(count) relative values")
        vector.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                relative(
                    vector: v.baseAddress!, levelDB: levelDB, speechSeconds: speechSeconds,
                    into: o.baseAddress! + offset)
            }
        }
    }
}
