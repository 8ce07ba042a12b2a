/// Combines a clip's (or a stretch of a leg's) window scores into one verdict, each window weighted
/// by how much speech it holds.
public struct ScoreAccumulator: Sendable {
    private var probabilities = [Double](repeating: 0, count: Emotion.allCases.count)
    private var upset = 0.0
    private var upsetFromHead = 0.0
    private var weight = 0.0
    public private(set) var windows = 0

    public init() {}

    public mutating func add(_ scores: EmotionScores, speechSeconds: Double) {
        let w = max(speechSeconds, 1e-3)
        for i in probabilities.indices { probabilities[i] += w * Double(scores.probabilities[i]) }
        upset += w * Double(scores.upset)
        upsetFromHead += w * Double(scores.upsetFromHead)
        weight += w
        windows += 1
    }

    /// nil when no window had speech.
    public var scores: EmotionScores? {
        guard weight > 0 else { return nil }
        return EmotionScores(
            probabilities: probabilities.map { Float($0 / weight) }, upset: Float(upset / weight),
            upsetFromHead: Float(upsetFromHead / weight))
    }
}
