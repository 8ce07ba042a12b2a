/// How a leg turns window verdicts into a state and escalations.
public struct LegPolicy: Sendable, Codable, Equatable {
    /// Weight of the newest window in the smoothed upset level (exponential moving average).
    public var smoothing: Double = 0.5
    /// The smoothed level must reach this to enter `upset`...
    public var enterUpset: Double = 0.6
    /// ...and fall below this to return to `calm` (hysteresis: one window does not flip the state).
    public var exitUpset: Double = 0.4
    /// Windows with speech in a row that must reach `enterUpset` before the state turns `upset` (1: the
    /// first one does): one loud remark is not an upset caller.
    public var enterWindows: Int = 1
    /// Upset speech counts toward escalation only while the smoothed level is at least this (nil: all of
    /// the leg's upset speech counts). Lets the shown state be quick while the escalation, an action
    /// the switch takes, waits for a surer level.
    public var escalateUpset: Double?
    /// Escalate when the customer has been upset for this much speech...
    public var escalateUpsetSeconds: Double = 20
    /// ...within this many seconds of media time.
    public var escalateWithinSeconds: Double = 60
    /// Roles the escalation rule watches.
    public var escalateRoles: [String] = ["customer"]

    public init() {}
}

/// A leg's state as the switch sees it.
public enum LegMood: String, Sendable, Codable {
    case calm
    case upset
}
