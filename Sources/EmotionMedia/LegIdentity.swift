import EmotionCore

/// Who a leg is.
public struct LegIdentity: Sendable, Equatable {
    public var callID: String
    public var legID: String
    public var role: String

    public init(callID: String, legID: String, role: String) {
        self.callID = callID
        self.legID = legID
        self.role = role
    }
}

/// What a leg's media produces, in order.
public enum LegOutput: Sendable {
    /// The first audio packet: codec, payload type, SSRC and the sender's address.
    case started(codec: VoiceCodec, payloadType: UInt8, ssrc: UInt32, source: String?)
    /// One analysis window; `scores` is nil for a window without enough speech.
    case window(WindowFeatures, EmotionScores?, mood: LegMood)
    case stateChanged(from: LegMood, to: LegMood)
    case escalate(upsetSeconds: Double)
}
