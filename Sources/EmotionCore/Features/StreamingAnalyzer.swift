/// Audio in, windows out: the frame extractor and the window aggregator together.
/// Training, evaluation, offline analysis and the live legs all run audio through this one type.
public final class StreamingAnalyzer {
    public let features: FeatureConfig
    public let windows: WindowConfig
    private let extractor: FrameFeatureExtractor
    private let aggregator: WindowAggregator

    public init(
        features: FeatureConfig = FeatureConfig(), windows: WindowConfig = WindowConfig()
    ) throws(FeatureConfig.Invalid) {
        self.features = features
        self.windows = windows
        extractor = try FrameFeatureExtractor(config: features)
        aggregator = try WindowAggregator(config: windows, frameStep: features.frameStep)
        // Windows read only speech frames, so frames the gate turns down skip most of their analysis.
        extractor.needsFullAnalysis = { [aggregator] energyDB in aggregator.judge(energyDB: energyDB) }
    }

    public func reset() {
        extractor.reset()
        aggregator.reset()
    }

    /// Media seconds of audio pushed so far.
    public var elapsed: Double { Double(extractor.samplesReceived) / Double(features.sampleRate) }

    public func push(_ samples: UnsafeBufferPointer<Float>, onWindow: (WindowFeatures) -> Void) {
        extractor.push(samples) { frame in
            if let w = aggregator.add(frame) { onWindow(w) }
        }
    }

    public func push(_ samples: [Float], onWindow: (WindowFeatures) -> Void) {
        samples.withUnsafeBufferPointer { push($0, onWindow: onWindow) }
    }

    public func finish(onWindow: (WindowFeatures) -> Void) {
        extractor.finish { frame in
            if let w = aggregator.add(frame) { onWindow(w) }
        }
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
