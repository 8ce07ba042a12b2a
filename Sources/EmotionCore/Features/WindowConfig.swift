/// How frames become the windows the model reads, and which frames count as speech.
public struct WindowConfig: Sendable, Codable, Equatable, Hashable {
    /// Window length in seconds.
    public var length: Double
    /// Seconds between window ends.
    public var hop: Double
    /// Least speech (seconds) a window needs for a verdict; quieter windows report silence.
    public var minimumSpeech: Double
    /// Frames below this level (dB re full scale) are never speech.
    public var speechFloorDB: Float
    /// Frames must also stand this far above the tracked noise floor.
    public var speechMarginDB: Float
    /// ...and lie within this range below the talker's recent peak level, which makes the gate
    /// follow the line's gain rather than an absolute level.
    public var speechRangeDB: Float

    public init(
        length: Double = 3, hop: Double = 1, minimumSpeech: Double = 0.5,
        speechFloorDB: Float = -90, speechMarginDB: Float = 12, speechRangeDB: Float = 35
    ) {
        self.length = length
        self.hop = hop
        self.minimumSpeech = minimumSpeech
        self.speechFloorDB = speechFloorDB
        self.speechMarginDB = speechMarginDB
        self.speechRangeDB = speechRangeDB
    }

    public func validate() throws(FeatureConfig.Invalid) {
        guard length >= 0.5, length <= 60 else {
            throw .init(description: "window length must be in 0.5...60 s (got \(length))")
        }
        guard hop >= 0.1, hop <= length else {
            throw .init(description: "window hop must be in 0.1...length s (got \(hop))")
        }
        guard minimumSpeech >= 0, minimumSpeech <= length else {
            throw .init(description: "minimum speech must be in 0...length s")
        }
    }
}

/// A simple energy gate: speech stands above an absolute floor, above the leg's own noise floor, and
/// within a fixed range of the talker's recent peak.
///
/// The noise floor starts at the first frame's level, follows drops at once and rises slowly (1 dB a
/// second); the peak follows rises at once and decays at 1 dB a second. Both are learned from the
/// stream itself, so the gate is the same for a clip played 20 dB quieter.
public struct SpeechGate: Sendable {
    public let floorDB: Float
    public let marginDB: Float
    public let rangeDB: Float
    public private(set) var noiseFloorDB: Float
    public private(set) var peakDB: Float
    private let driftPerFrame: Float

    public init(config: WindowConfig, frameStep: Double) {
        floorDB = config.speechFloorDB
        marginDB = config.speechMarginDB
        rangeDB = config.speechRangeDB
        noiseFloorDB = .infinity
        peakDB = -.infinity
        driftPerFrame = Float(1.0 * frameStep)
    }

    public mutating func isSpeech(energyDB: Float) -> Bool {
        // Falls at once, rises slowly: a talker's pauses keep it down at the line's real noise.
        noiseFloorDB = energyDB < noiseFloorDB ? energyDB : noiseFloorDB + driftPerFrame
        peakDB = max(energyDB, peakDB - driftPerFrame)
        return energyDB > floorDB && energyDB > noiseFloorDB + marginDB && energyDB > peakDB - rangeDB
    }
}
