import Foundation

/// What the model says about one window.
public struct EmotionScores: Sendable, Equatable {
    /// Probabilities for `Emotion.allCases`, summing to 1.
    public var probabilities: [Float]
    /// Probability that the speaker is upset (as the model's `upsetSource` decides it).
    public var upset: Float
    /// The dedicated upset head's own probability.
    public var upsetFromHead: Float

    public var label: Emotion {
        Emotion.allCases[probabilities.indices.max { probabilities[$0] < probabilities[$1] } ?? Emotion.neutral.index]
    }

    /// Total probability of the upset emotions (angry, disgust, fear, sad).
    public var upsetFromEmotions: Float {
        zip(Emotion.allCases, probabilities).reduce(0) { $0 + ($1.0.isUpset ? $1.1 : 0) }
    }

    public init(probabilities: [Float], upset: Float, upsetFromHead: Float? = nil) {
        self.probabilities = probabilities
        self.upset = upset
        self.upsetFromHead = upsetFromHead ?? upset
    }
}

/// A trained emotion model: the feature configuration it was trained with, input normalisation,
/// networks (an ensemble, averaged), and how it was trained and measured. Immutable and shareable;
/// use a `ModelRunner` per thread for predictions.
public struct EmotionModel: Codable, Sendable {
    public static let formatName = "emotiontap-model"
    public static let currentVersion = 2

    public var format: String
    public var version: Int
    public var features: FeatureConfig
    public var windows: WindowConfig
    public var inputs: [String]
    public var labels: [String]
    public var normalization: Normalization
    public var networks: [Network]
    /// Where the upset probability comes from: the 7-way scores (sum of angry, disgust, fear, sad),
    /// the dedicated upset head, or the mean of both.
    public var upsetSource: UpsetSource
    /// Applied to the upset probability after `upsetSource` (version 2).
    public var calibration: UpsetCalibration
    /// The state thresholds and smoothing chosen with this model (version 2).
    public var decision: DecisionTuning
    /// Per-leg normalisation, when the model reads leg-relative inputs after the window vector.
    public var legNormalization: LegNormalization?
    /// A frame-level network fused with the window networks (optional): its probabilities and upset head
    /// are mixed in with weight `frameNetWeight` before `upsetSource` and the calibration.
    public var frameNet: FrameNet?
    public var frameNetWeight: Float?
    public var training: TrainingInfo
    public var metrics: [String: MetricsSummary]

    public enum UpsetSource: String, Codable, Sendable {
        case emotions, head, mean
    }

    public struct Normalization: Codable, Sendable, Equatable {
        public var mean: PackedFloats
        public var scale: PackedFloats
        public init(mean: [Float], scale: [Float]) {
            self.mean = PackedFloats(mean)
            self.scale = PackedFloats(scale)
        }
    }

    public struct TrainingInfo: Codable, Sendable, Equatable {
        public var command: String
        public var manifest: String
        public var clips: Int
        public var windows: Int
        public var clipsPerCorpus: [String: Int]
        public var speakers: Int
        public var seed: UInt64
        public var augmentation: String
        public var learner: String
        public var created: String
        public init(
            command: String, manifest: String, clips: Int, windows: Int, clipsPerCorpus: [String: Int], speakers: Int,
            seed: UInt64, augmentation: String, learner: String, created: String
        ) {
            self.command = command
            self.manifest = manifest
            self.clips = clips
            self.windows = windows
            self.clipsPerCorpus = clipsPerCorpus
            self.speakers = speakers
            self.seed = seed
            self.augmentation = augmentation
            self.learner = learner
            self.created = created
        }
    }

    /// Headline figures kept in the model file (e.g. "cv" overall, "cv.crema-d" per corpus).
    public struct MetricsSummary: Codable, Sendable, Equatable {
        public var clips: Int
        public var upsetAccuracy: Double
        public var upsetMacroF1: Double
        public var emotionAccuracy: Double
        public var emotionMacroF1: Double
        public init(
            clips: Int, upsetAccuracy: Double, upsetMacroF1: Double, emotionAccuracy: Double, emotionMacroF1: Double
        ) {
            self.clips = clips
            self.upsetAccuracy = upsetAccuracy
            self.upsetMacroF1 = upsetMacroF1
            self.emotionAccuracy = emotionAccuracy
            self.emotionMacroF1 = emotionMacroF1
        }
    }

    public init(
        features: FeatureConfig, windows: WindowConfig, normalization: Normalization, networks: [Network],
        training: TrainingInfo, metrics: [String: MetricsSummary] = [:], upsetSource: UpsetSource = .emotions,
        calibration: UpsetCalibration = .identity, decision: DecisionTuning = .untuned,
        legNormalization: LegNormalization? = nil, frameNet: FrameNet? = nil, frameNetWeight: Float = 0.5
    ) {
        format = Self.formatName
        version = Self.currentVersion
        self.features = features
        self.windows = windows
        inputs = WindowVector.names + (legNormalization?.inputNames ?? [])
        self.legNormalization = legNormalization
        labels = Emotion.allCases.map(\.rawValue)
        self.normalization = normalization
        self.networks = networks
        self.upsetSource = upsetSource
        self.calibration = calibration
        self.decision = decision
        self.frameNet = frameNet
        self.frameNetWeight = frameNet == nil ? nil : frameNetWeight
        self.training = training
        self.metrics = metrics
    }

    /// Frames in one full window.
    public var framesPerWindow: Int { Int((windows.length / features.frameStep).rounded()) }

    private struct Header: Decodable {
        var format: String?
        var version: Int?
    }

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Decodes and checks a model file: format, version, and that its inputs are the vector this build computes.
    public init(data: Data, source: String) throws(LoadError) {
        // Format and version first, so that an old or foreign file is named as such rather than as
        // a missing field.
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: data)
        } catch {
            throw LoadError(
                description: "\(source): not a model file (\(data.count) bytes that are not a whole JSON object: "
                    + "truncated or another kind of file)")
        }
        guard header.format == Self.formatName else {
            throw LoadError(description: "\(source): format '\(header.format ?? "none")' is not \(Self.formatName)")
        }
        guard header.version == Self.currentVersion else {
            throw LoadError(
                description:
                    "\(source): model version \(header.version.map(String.init) ?? "none"); this build reads "
                    + "version \(Self.currentVersion): retrain it with `make model`")
        }
        let decoded: EmotionModel
        do {
            decoded = try JSONDecoder().decode(EmotionModel.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw LoadError(description: "\(source): not a valid model file: '\(key.stringValue)' is missing")
        } catch {
            throw LoadError(description: "\(source): not a valid model file: \(error)")
        }
        guard decoded.legNormalization.map({ $0.vectorIndices != nil }) ?? true,
            decoded.inputs == WindowVector.names + (decoded.legNormalization?.inputNames ?? [])
        else {
            throw LoadError(
                description:
                    "\(source): model was trained on a different feature vector (\(decoded.inputs.count) inputs); "
                    + "retrain it with this build"
            )
        }
        guard decoded.labels == Emotion.allCases.map(\.rawValue) else {
            throw LoadError(description: "\(source): unexpected labels \(decoded.labels)")
        }
        do { try decoded.features.validate(); try decoded.windows.validate() } catch {
            throw LoadError(description: "\(source): \(error.description)")
        }
        let n = decoded.inputs.count
        guard decoded.normalization.mean.values.count == n, decoded.normalization.scale.values.count == n,
            (decoded.legNormalization.map { $0.priorMean.values.count == $0.tracked.count } ?? true),
            !decoded.networks.isEmpty,
            decoded.networks.allSatisfy({
                ($0.hidden.first?.inputs ?? $0.emotionHead.inputs) == n
                    && $0.emotionHead.outputs == Emotion.allCases.count && $0.upsetHead.outputs == 1
            })
        else { throw LoadError(description: "\(source): layer shapes do not fit \(n) inputs") }
        let c = decoded.calibration, d = decoded.decision
        guard c.slope.isFinite, c.slope > 0, c.intercept.isFinite, (0.01...1).contains(d.smoothing),
            (0...1).contains(d.enterUpset), (0...1).contains(d.exitUpset), d.exitUpset <= d.enterUpset,
            (1...30).contains(d.enterWindows), d.escalateUpset.map({ (0...1).contains($0) }) ?? true,
            d.escalateUpsetSeconds.map({ (1...3600).contains($0) }) ?? true,
            d.escalateWithinSeconds.map({ (1...3600).contains($0) && $0 >= (d.escalateUpsetSeconds ?? 1) }) ?? true
        else { throw LoadError(description: "\(source): calibration or decision values out of range") }
        if let net = decoded.frameNet {
            let hopFrames = Int((decoded.windows.hop / decoded.features.frameStep).rounded())
            if let problem = net.problem(
                windowFrames: decoded.framesPerWindow, hopFrames: hopFrames, melBands: decoded.features.nMels)
            {
                throw LoadError(description: "\(source): \(problem)")
            }
            guard let w = decoded.frameNetWeight, w > 0, w <= 1 else {
                throw LoadError(description: "\(source): frameNetWeight must be in (0, 1] with a frame network")
            }
        }
        self = decoded
    }

    public static func load(_ url: URL) throws(LoadError) -> EmotionModel {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw LoadError(description: "\(url.path): cannot read: \(error.localizedDescription)")
        }
        return try EmotionModel(data: data, source: url.path)
    }

    /// The default model built into the binary.
    public static func builtIn() throws(LoadError) -> EmotionModel {
        let data = Data(BuiltInModel.json.utf8)
        guard data.count > 16 else {
            throw LoadError(
                description: "this build has no built-in model: train one with `make model` (or pass --model FILE)")
        }
        return try EmotionModel(data: data, source: "built-in model")
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    /// The model as a Swift source file that builds it into the binary (a string literal compiles in
    /// seconds; a byte-array resource of the same size takes minutes).
    /// `ruleCommand`: the command that chose its decision rule again after training (`emotiontap tune`).
    public func swiftSource(ruleCommand: String? = nil) throws -> String {
        let json = String(decoding: try encoded(), as: UTF8.self)
        let quotes = String(repeating: "\"", count: 3)
        return
            "// Generated by `make model` (emotiontap train ... --embed-swift): the default model, built into the "
            + "binary.\n"
            + "// Do not edit by hand. Training command: \(training.command)\n"
            + (ruleCommand.map { "// Decision rule chosen again by: \($0)\n" } ?? "") + "\n"
            // Indented as swift-format leaves it (a multi-line literal drops its closing delimiter's indent).
            + "enum BuiltInModel {\n    static let json = #\(quotes)\n        \(json)\n        \(quotes)#\n}\n"
    }

}

/// Runs a model on window vectors with preallocated scratch space: one per leg or per thread.
public final class ModelRunner {
    public let model: EmotionModel
    private var normalized: [Float]
    private var scratchA: [Float]
    private var scratchB: [Float]
    private var emotions: [Float]
    private var sum: [Float]
    /// The leg's own baseline, for a model with per-leg normalisation: a runner serves one leg (or one clip
    /// at a time, with `resetLeg()` between).
    private var baseline: LegBaseline?
    private var input: [Float]
    /// The frame network's run on this leg, fed every frame through `observe`.
    private let frames: FrameNetStream?
    private var frameProbabilities: [Float]

    public init(model: EmotionModel) {
        self.model = model
        let width = max(model.networks.map(\.widestLayer).max() ?? 0, model.inputs.count)
        normalized = [Float](repeating: 0, count: model.inputs.count)
        input = [Float](repeating: 0, count: model.inputs.count)
        baseline = model.legNormalization.map { LegBaseline($0) }
        scratchA = [Float](repeating: 0, count: width)
        scratchB = [Float](repeating: 0, count: width)
        emotions = [Float](repeating: 0, count: Emotion.allCases.count)
        sum = [Float](repeating: 0, count: Emotion.allCases.count)
        frames = model.frameNet.map { FrameNetStream(net: $0) }
        frameProbabilities = [Float](repeating: 0, count: Emotion.allCases.count)
    }

    /// Windows whose frame network verdict was no longer available (scored too late): always 0 on the
    /// live path.
    public private(set) var frameNetMisses = 0

    /// Whether the model reads every frame (`observe`).
    public var readsFrames: Bool { frames != nil }
    /// Whether every frame it reads must be fully analysed: a frame network trained on gated frames
    /// (`FrameNet.gatedFrames`) reads the frames the speech gate turns down as the gate leaves them.
    public var analysesEveryFrame: Bool { readsFrames && model.frameNet?.gatedFrames != true }

    /// Starts a new leg: the per-leg baseline goes back to its warm start, the frame network's history to zeros.
    public func resetLeg() {
        baseline?.reset()
        frames?.reset()
    }

    /// The leg's next frame, for a model with a frame network (a no-op otherwise).
    @inline(__always)
    public func observe(frame: UnsafeBufferPointer<Float>, melBandsDB: UnsafeBufferPointer<Float>? = nil, speech: Bool)
    {
        frames?.push(frame: frame, melBandsDB: melBandsDB, speech: speech)
    }

    /// Scores a window of this runner's leg (nil without enough speech); with per-leg normalisation the
    /// window also moves the leg's baseline. With a frame network, every frame up to the window's end must
    /// have gone through `observe`.
    public func predict(window: WindowFeatures) -> EmotionScores? {
        guard let vector = window.vector else { return nil }
        return predict(
            vector: vector, levelDB: window.levelDB, speechSeconds: window.speechSeconds,
            frames: window.startFrame..<window.endFrame)
    }

    /// `frames` is the window's span, for the frame network; without it only the window networks speak.
    public func predict(
        vector: [Float], levelDB: Float, speechSeconds: Double, frames: Range<Int>? = nil
    )
        -> EmotionScores
    {
        guard baseline != nil else { return predict(vector, frames: frames) }
        for i in vector.indices { input[i] = vector[i] }
        // Mutated in place: a copy of the baseline would reallocate its arrays every window.
        baseline!.relative(
            vector: vector, levelDB: levelDB, speechSeconds: speechSeconds, into: &input, at: vector.count)
        return predict(input, frames: frames)
    }

    /// Scores a model input as it stands (the window vector, plus any leg-relative entries).
    public func predict(_ vector: [Float], frames span: Range<Int>? = nil) -> EmotionScores {
        precondition(
            vector.count == model.inputs.count,
            "window vector has \(vector.count) entries, model wants \(model.inputs.count)")
        let mean = model.normalization.mean.values, scale = model.normalization.scale.values
        for i in 0..<vector.count { normalized[i] = (vector[i] - mean[i]) / scale[i] }
        for i in 0..<sum.count { sum[i] = 0 }
        var upset: Float = 0
        normalized.withUnsafeBufferPointer { x in
            scratchA.withUnsafeMutableBufferPointer { a in
                scratchB.withUnsafeMutableBufferPointer { b in
                    emotions.withUnsafeMutableBufferPointer { e in
                        for network in model.networks {
                            upset += network.forward(
                                x.baseAddress!, scratchA: a.baseAddress!, scratchB: b.baseAddress!,
                                emotions: e.baseAddress!)
                            for i in 0..<e.count { sum[i] += e[i] }
                        }
                    }
                }
            }
        }
        let n = Float(model.networks.count)
        for i in 0..<sum.count { sum[i] /= n }
        upset /= n
        if let frames, let span, let weight = model.frameNetWeight {
            let head = frameProbabilities.withUnsafeMutableBufferPointer {
                frames.score(startFrame: span.lowerBound, endFrame: span.upperBound, probabilities: $0.baseAddress!)
            }
            if let head {
                for i in 0..<sum.count { sum[i] = (1 - weight) * sum[i] + weight * frameProbabilities[i] }
                upset = (1 - weight) * upset + weight * head
            } else {
                // Only a window scored after later frames went in lands here: a caller's bug, loud in tests;
                // a live leg keeps going on the window networks alone.
                frameNetMisses += 1
                assertionFailure("window \(span) scored after the frame network moved past it")
            }
        }
        var scores = EmotionScores(probabilities: sum, upset: upset, upsetFromHead: upset)
        switch model.upsetSource {
        case .head: break
        case .emotions: scores.upset = scores.upsetFromEmotions
        case .mean: scores.upset = (scores.upset + scores.upsetFromEmotions) / 2
        }
        scores.upset = model.calibration.apply(scores.upset)
        return scores
    }
}
