/// The per-leg decision layer shared by the live service and offline replays: window verdicts in,
/// state changes, escalations and the end-of-leg summary out.
public struct LegDecisions: Sendable {
    public enum Output: Sendable, Equatable {
        case stateChanged(from: LegMood, to: LegMood)
        /// Raised once per episode; `upsetSeconds` is the upset speech in the rule's span.
        case escalate(upsetSeconds: Double)
    }

    public let policy: LegPolicy
    public let watchedForEscalation: Bool
    public private(set) var mood: LegMood = .calm
    public private(set) var smoothedUpset: Double?
    public private(set) var escalated = false

    // Upset speech per window end, for the escalation span.
    private var upsetSpans: [(end: Double, seconds: Double)] = []
    private var lastWindowEnd = 0.0
    private var windowsAboveEnter = 0

    // Summary.
    public private(set) var speechSeconds = 0.0
    public private(set) var upsetSpeechSeconds = 0.0
    public private(set) var peakUpset = 0.0
    public private(set) var windowsWithSpeech = 0
    private var emotionTime = [Double](repeating: 0, count: Emotion.allCases.count)
    private var early: [Double] = []
    private var recent: [Double] = []
    public private(set) var escalations = 0

    public init(policy: LegPolicy, role: String) {
        self.policy = policy
        watchedForEscalation = policy.escalateRoles.contains(role)
    }

    /// Feeds one window; returns what it changed.
    public mutating func add(window: WindowFeatures, scores: EmotionScores?) -> [Output] {
        guard let scores else { return [] }
        // Windows overlap: count only the speech new since the previous window's end.
        let newShare =
            window.end - window.start > 0
            ? min(1, (window.end - max(window.start, lastWindowEnd)) / (window.end - window.start)) : 1
        lastWindowEnd = window.end
        let newSpeech = window.speechSeconds * max(0, newShare)
        let p = Double(scores.upset)
        speechSeconds += newSpeech
        windowsWithSpeech += 1
        peakUpset = max(peakUpset, p)
        for (i, q) in scores.probabilities.enumerated() { emotionTime[i] += newSpeech * Double(q) }
        if early.count < 5 { early.append(p) }
        recent.append(p)
        if recent.count > 5 { recent.removeFirst() }

        var outputs: [Output] = []
        let smoothed = smoothedUpset.map { policy.smoothing * p + (1 - policy.smoothing) * $0 } ?? p
        smoothedUpset = smoothed
        let previous = mood
        windowsAboveEnter = smoothed >= policy.enterUpset ? windowsAboveEnter + 1 : 0
        if mood == .calm, windowsAboveEnter >= max(1, policy.enterWindows) { mood = .upset }
        if mood == .upset, smoothed < policy.exitUpset { mood = .calm }
        if mood != previous { outputs.append(.stateChanged(from: previous, to: mood)) }

        if mood == .upset { upsetSpeechSeconds += newSpeech }
        let countsForEscalation = mood == .upset && smoothed >= (policy.escalateUpset ?? 0)
        upsetSpans.append((window.end, countsForEscalation ? newSpeech : 0))
        // A leg's window ends only grow, so what fell out of the span is a prefix: no scan of the rest
        // (the policy search replays every call under each of its rules).
        let cutoff = window.end - policy.escalateWithinSeconds
        var expired = 0
        while expired < upsetSpans.count, upsetSpans[expired].end <= cutoff { expired += 1 }
        upsetSpans.removeFirst(expired)
        let inSpan = upsetSpans.reduce(0) { $0 + $1.seconds }
        if watchedForEscalation {
            if !escalated, inSpan >= policy.escalateUpsetSeconds {
                escalated = true
                escalations += 1
                outputs.append(.escalate(upsetSeconds: inSpan))
            } else if escalated, mood == .calm, inSpan < policy.escalateUpsetSeconds / 2 {
                // The episode is over once the caller has calmed down: a new one may escalate again.
                escalated = false
            }
        }
        return outputs
    }

    /// Upset speech seconds in the rule's current span.
    public var upsetSecondsInSpan: Double { upsetSpans.reduce(0) { $0 + $1.seconds } }

    /// The windows of the rule's current span, by end time, with the upset speech each counted: what an
    /// escalation raised now rests on (offline judging asks whose speech that was).
    public var escalationSpan: [(end: Double, seconds: Double)] { upsetSpans }

    /// What a supervisor reads after the call.
    public struct Summary: Sendable, Equatable {
        public var speechSeconds: Double
        public var upsetFraction: Double
        public var peakUpset: Double
        /// Share of speech time per emotion (sums to 1 when there was speech).
        public var emotionMix: [String: Double]
        /// Mean upset of the first and last few windows; nil without speech.
        public var startUpset: Double?
        public var endUpset: Double?
        public var endedCalmer: Bool?
        public var escalations: Int
    }

    public var summary: Summary {
        let total = emotionTime.reduce(0, +)
        var mix: [String: Double] = [:]
        for (e, t) in zip(Emotion.allCases, emotionTime) { mix[e.rawValue] = total > 0 ? t / total : 0 }
        let start = early.isEmpty ? nil : early.reduce(0, +) / Double(early.count)
        let end = recent.isEmpty ? nil : recent.reduce(0, +) / Double(recent.count)
        var calmer: Bool?
        if let start, let end, windowsWithSpeech >= 4 { calmer = end < start - 0.05 }
        return Summary(
            speechSeconds: speechSeconds, upsetFraction: speechSeconds > 0 ? upsetSpeechSeconds / speechSeconds : 0,
            peakUpset: peakUpset, emotionMix: mix, startUpset: start, endUpset: end, endedCalmer: calmer,
            escalations: escalations)
    }
}
