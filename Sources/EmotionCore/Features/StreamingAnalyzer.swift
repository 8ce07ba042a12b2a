/// Audio in, windows out: the frame extractor and the window aggregator together.
/// Training, evaluation, offline analysis and the live legs all run audio through this one type.
public final class StreamingAnalyzer {
    public let features: FeatureConfig
    public let windows: WindowConfig
    private let extractor: FrameFeatureExtractor
    private let aggregator: WindowAggregator

    /// Every frame with the speech gate's verdict, before the window it completes (set it for a model
    /// that reads frames).
    public var onFrame: ((FrameView, Bool) -> Void)?

    /// `analyseEveryFrame`: silent frames get the full analysis too (a frame network reads them); without
    /// it they skip what windows never read. Speech frames come out the same either way.
    public init(
        features: FeatureConfig = FeatureConfig(), windows: WindowConfig = WindowConfig(),
        analyseEveryFrame: Bool = false
    ) throws(FeatureConfig.Invalid) {
        self.features = features
        self.windows = windows
        extractor = try FrameFeatureExtractor(config: features)
        aggregator = try WindowAggregator(config: windows, frameStep: features.frameStep)
        if !analyseEveryFrame {
            // Windows read only speech frames, so frames the gate turns down skip most of their analysis.
            extractor.needsFullAnalysis = { [aggregator] energyDB in aggregator.judge(energyDB: energyDB) }
        }
    }

    /// The analyser a model's runner needs: every frame fed to the runner when the model has a frame
    /// network, and fully analysed unless that network was trained on gated frames.
    public convenience init(for model: EmotionModel, feeding runner: ModelRunner) throws(FeatureConfig.Invalid) {
        try self.init(
            features: model.features, windows: model.windows, analyseEveryFrame: runner.analysesEveryFrame)
        if runner.readsFrames {
            // A strong capture: the runner holds nothing of the analyser, so there is no cycle, and an
            // unowned one would cost an atomic retain and release on every frame.
            onFrame = { [runner] frame, speech in
                runner.observe(frame: frame.values, melBandsDB: frame.melBandsDB, speech: speech)
            }
        }
    }

    public func reset() {
        extractor.reset()
        aggregator.reset()
    }

    /// Media seconds of audio pushed so far.
    public var elapsed: Double { Double(extractor.samplesReceived) / Double(features.sampleRate) }

    /// Samples still to push before the next window comes out (0: the next push completes it).
    public var samplesUntilNextWindow: Int {
        // Frame f is analysed once the signal reaches its end: f * hop + n_fft, less the n_fft / 2 of
        // left padding.
        let needed = aggregator.nextWindowLastFrame * features.hopLength + features.nFFT / 2
        return max(0, needed - extractor.samplesReceived)
    }

    public func push(_ samples: UnsafeBufferPointer<Float>, onWindow: (WindowFeatures) -> Void) {
        // Read the frame observer once per push, not once per frame (each read of a closure property is
        // an exclusivity check and a retain).
        let onFrame = self.onFrame
        extractor.push(samples) { frame in take(frame, onFrame, onWindow) }
    }

    @inline(__always)
    private func take(
        _ frame: FrameView, _ onFrame: ((FrameView, Bool) -> Void)?, _ onWindow: (WindowFeatures) -> Void
    ) {
        let window = aggregator.add(frame)
        onFrame?(frame, aggregator.lastFrameWasSpeech)
        if let window { onWindow(window) }
    }

    public func push(_ samples: [Float], onWindow: (WindowFeatures) -> Void) {
        samples.withUnsafeBufferPointer { push($0, onWindow: onWindow) }
    }

    public func finish(onWindow: (WindowFeatures) -> Void) {
        let onFrame = self.onFrame
        extractor.finish { frame in take(frame, onFrame, onWindow) }
        if let w = aggregator.finish() { onWindow(w) }
    }

    /// Every window of a whole signal.
    public func windows(of samples: [Float]) -> [WindowFeatures] {
        reset()
        var out: [WindowFeatures] = []
        push(samples) { out.append($0) }
        finish { out.append($0) }
        return out
    }
}
