import EmotionCore
import Foundation

/// Golden frames written by tools/librosa_goldens.py (librosa 0.11, float64).
public struct Golden: Decodable, Sendable {
    public struct Params: Decodable, Sendable {
        public var sample_rate: Int, n_fft: Int, win_length: Int, hop_length: Int, n_mels: Int
        public var fmin: Double, fmax: Double
    }
    public struct Frame: Decodable, Sendable {
        public var t: Double, rms: Double, zcr: Double, centroid: Double
        public var mfcc: [Double], chroma: [Double]
    }
    public var clip: String
    public var params: Params
    public var frames: [Frame]

    public var config: FeatureConfig {
        FeatureConfig(
            sampleRate: params.sample_rate, nFFT: params.n_fft, winLength: params.win_length,
            hopLength: params.hop_length, nMels: params.n_mels, fmin: params.fmin, fmax: params.fmax)
    }

    public static func all() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: Fixtures.goldens.path).filter { $0.hasSuffix(".json") }
            .sorted()
    }

    public static func load(_ name: String) throws -> Golden {
        try JSONDecoder().decode(Golden.self, from: Data(contentsOf: Fixtures.goldens.appendingPathComponent(name)))
    }
}
