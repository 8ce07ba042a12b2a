import EmotionCore

/// Who a leg is.
public struct LegIdentity: Sendable, Equatable {
    public var callID: String
    public var legID: String
    public var role: String
    /// For a stream of a SIPREC recording session: which session, stream and participant.
    public var recording: RecordedStream?
    /// Who handles the call (an agent's id or AOR), for reports: set on both of a call's legs, so the
    /// customer's leg is grouped by the agent who talked to them.
    public var agentID: String?
    /// Free labels from the switch (queue, skill, campaign...), kept with the leg's history.
    public var tags: [String: String]
    /// For a leg fed by a stream connection (AudioSocket, a WebSocket protocol) instead of RTP.
    public var stream: StreamOrigin?

    public init(
        callID: String, legID: String, role: String, recording: RecordedStream? = nil, agentID: String? = nil,
        tags: [String: String] = [:], stream: StreamOrigin? = nil
    ) {
        self.callID = callID
        self.legID = legID
        self.role = role
        self.recording = recording
        self.agentID = agentID
        self.tags = tags
        self.stream = stream
    }
}

/// Where a stream leg's audio comes from: the protocol (`audiosocket`, `audio-fork`, `jambonz`,
/// `twilio`, `audiohook`) and the id the switch gave the stream (AudioSocket's UUID, Twilio's
/// streamSid, AudioHook's session id), so a leg can be matched with the switch's own records.
public struct StreamOrigin: Sendable, Equatable {
    public var kind: String
    public var id: String

    public init(kind: String, id: String) {
        self.kind = kind
        self.id = id
    }

    /// One stream leg per protocol and id.
    public var key: String { kind + ":" + id }
}

/// A leg that is one stream of a SIPREC recording session, as the recording metadata describes it.
public struct RecordedStream: Sendable, Equatable {
    /// The recording session, as `GET /v1/sessions` names it.
    public var session: String
    /// The stream's SDP `a=label`.
    public var label: String?
    /// The AOR of the participant who sends it, by the metadata's `participantstreamassoc`.
    public var participant: String?

    public init(session: String, label: String?, participant: String?) {
        self.session = session
        self.label = label
        self.participant = participant
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
