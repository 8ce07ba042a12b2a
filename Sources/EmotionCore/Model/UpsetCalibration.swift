import Foundation

/// Maps the networks' raw upset probability to one that means what it says (Platt scaling, fitted on
/// held-out speakers): `p = sigmoid(slope * logit(raw) + intercept)`. Of the windows given 0.8, about
/// 80 % are upset speech (at the training corpora's mix of calm and upset speech).
public struct UpsetCalibration: Codable, Sendable, Equatable {
    public var slope: Double
    public var intercept: Double

    public static let identity = UpsetCalibration(slope: 1, intercept: 0)

    public init(slope: Double, intercept: Double) {
        self.slope = slope
        self.intercept = intercept
    }

    @inline(__always)
    public func apply(_ raw: Float) -> Float {
        let p = min(max(Double(raw), 1e-6), 1 - 1e-6)
        return Float(1 / (1 + exp(-(slope * log(p / (1 - p)) + intercept))))
    }
}

/// How a leg's window verdicts become its `calm`/`upset` state: chosen with the model, on simulated calls
/// from held-out speakers, for a false-alarm budget (calm speech shown upset at most a set share of the time).
/// A service config may override each value.
public struct DecisionTuning: Codable, Sendable, Hashable {
    /// Weight of the newest window in the smoothed upset level.
    public var smoothing: Double
    /// The smoothed (calibrated) level that enters `upset`, and the one below which the leg is `calm` again.
    public var enterUpset: Double
    public var exitUpset: Double
    /// Windows in a row at or above `enterUpset` before the state turns upset.
    public var enterWindows: Int
    /// The smoothed level at which upset speech counts toward escalation (nil: all upset speech does).
    public var escalateUpset: Double?
    /// Seconds of such speech (within the policy's escalation window) that raise an escalation; nil keeps
    /// the policy's own (20 s; models before it was searched carry none).
    public var escalateUpsetSeconds: Double?
    /// The span of media those seconds must fall within; nil keeps the policy's own (60 s; models before it
    /// was searched carry none). A short span asks for upset speech close together, which sporadic high
    /// windows in calm speech seldom are.
    public var escalateWithinSeconds: Double?
    /// What it was chosen for, in words (e.g. "calm speech shown upset <= 8 % on held-out calls").
    public var chosenFor: String

    public init(
        smoothing: Double, enterUpset: Double, exitUpset: Double, enterWindows: Int = 1, escalateUpset: Double? = nil,
        escalateUpsetSeconds: Double? = nil, escalateWithinSeconds: Double? = nil, chosenFor: String
    ) {
        self.smoothing = smoothing
        self.enterUpset = enterUpset
        self.exitUpset = exitUpset
        self.enterWindows = enterWindows
        self.escalateUpset = escalateUpset
        self.escalateUpsetSeconds = escalateUpsetSeconds
        self.escalateWithinSeconds = escalateWithinSeconds
        self.chosenFor = chosenFor
    }

    /// The values version 1 models shipped with, for a model trained without call-level tuning.
    public static let untuned = DecisionTuning(
        smoothing: 0.5, enterUpset: 0.6, exitUpset: 0.4, chosenFor: "fixed defaults, not tuned")
}

extension LegPolicy {
    /// This policy with the model's tuned decision values.
    public func tuned(by decision: DecisionTuning) -> LegPolicy {
        var p = self
        p.smoothing = decision.smoothing
        p.enterUpset = decision.enterUpset
        p.exitUpset = decision.exitUpset
        p.enterWindows = decision.enterWindows
        p.escalateUpset = decision.escalateUpset
        if let seconds = decision.escalateUpsetSeconds { p.escalateUpsetSeconds = seconds }
        if let span = decision.escalateWithinSeconds { p.escalateWithinSeconds = span }
        return p
    }
}
