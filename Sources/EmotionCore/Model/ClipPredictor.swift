/// Predicts one clip exactly as a fresh live leg hears it: windows over the clip, each scored, then
/// combined by speech time. Nothing carries over between clips.
public final class ClipPredictor {
    public let analyzer: StreamingAnalyzer
    public let runner: ModelRunner

    public init(model: EmotionModel) throws(FeatureConfig.Invalid) {
        runner = ModelRunner(model: model)
        analyzer = try StreamingAnalyzer(for: model, feeding: runner)
    }

    /// Window-by-window scores (nil for windows without enough speech), each scored as it completes, as a
    /// live leg does (a frame network keeps only the recent history a window needs).
    public func windows(of samples: [Float]) -> [(WindowFeatures, EmotionScores?)] {
        runner.resetLeg()
        analyzer.reset()
        var out: [(WindowFeatures, EmotionScores?)] = []
        analyzer.push(samples) { w in out.append((w, runner.predict(window: w))) }
        analyzer.finish { w in out.append((w, runner.predict(window: w))) }
        return out
    }

    /// The clip's verdict, or nil when it holds no speech.
    public func predict(_ samples: [Float]) -> EmotionScores? {
        var total = ScoreAccumulator()
        for (window, scores) in windows(of: samples) {
            if let scores { total.add(scores, speechSeconds: window.speechSeconds) }
        }
        return total.scores
    }
}
