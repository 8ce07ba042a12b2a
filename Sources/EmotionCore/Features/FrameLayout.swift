/// Where each per-frame feature sits in a frame row. The first five groups follow librosa's definitions;
/// the rest are extra descriptors for the emotion model.
public enum FrameLayout {
    public static let rms = 0
    public static let zcr = 1
    public static let centroid = 2
    public static let mfcc = 3..<(3 + FeatureConfig.mfccCount)
    public static let chroma = mfcc.upperBound..<(mfcc.upperBound + FeatureConfig.chromaCount)
    /// 10 log10 of the frame's mean square (dB re full scale).
    public static let energyDB = chroma.upperBound
    /// Fundamental frequency in Hz, 0 where the frame is not voiced.
    public static let pitchHz = energyDB + 1
    /// Peak of the normalised autocorrelation in the pitch range, 0...1.
    public static let voicing = pitchHz + 1
    /// Frequency below which 85 % of the magnitude lies.
    public static let rolloff = voicing + 1
    /// Spectral flatness (geometric / arithmetic mean) of the mel band energies centred in 250-3400 Hz.
    public static let flatness = rolloff + 1
    /// Least-squares slope of the mel band levels (dB) over 250-3400 Hz, in dB per kHz.
    public static let slope = flatness + 1
    /// Half the L1 distance between this and the previous frame's normalised magnitude spectrum.
    public static let flux = slope + 1
    /// dB ratio of energy below 1 kHz to energy above it.
    public static let lowHighRatio = flux + 1
    public static let count = lowHighRatio + 1

    public static let names: [String] = {
        var n = ["rms", "zcr", "centroid"]
        n += mfcc.indices.map { "mfcc\($0 - mfcc.lowerBound)" }
        n += chroma.indices.map { "chroma\($0 - chroma.lowerBound)" }
        n += ["energy_db", "pitch_hz", "voicing", "rolloff", "flatness", "slope", "flux", "low_high_db"]
        return n
    }()
}

/// One analysed frame, valid only inside the callback that receives it.
public struct FrameView {
    /// 0-based frame index; the frame is centred on `index * hop` samples.
    public let index: Int
    /// Frame centre in seconds (librosa's `frames_to_time`).
    public let time: Double
    /// `FrameLayout.count` values.
    public let values: UnsafeBufferPointer<Float>
    /// The frame's mel bands in dB (`FeatureConfig.nMels`; the MFCCs are their DCT); nil for a frame the
    /// speech gate turned down before its full analysis.
    public let melBandsDB: UnsafeBufferPointer<Float>?

    public var rms: Float { values[FrameLayout.rms] }
    public var zcr: Float { values[FrameLayout.zcr] }
    public var centroid: Float { values[FrameLayout.centroid] }
    public var mfcc: Slice<UnsafeBufferPointer<Float>> { values[FrameLayout.mfcc] }
    public var chroma: Slice<UnsafeBufferPointer<Float>> { values[FrameLayout.chroma] }
    public var energyDB: Float { values[FrameLayout.energyDB] }
}
