/// Counters beyond RFC 3550, per reason a packet was not played as it came.
public struct LegCounters: Sendable, Equatable {
    public var packets: UInt64 = 0
    public var comfortNoise: UInt64 = 0
    public var telephoneEvents: UInt64 = 0
    public var unknownPayloadType: UInt64 = 0
    public var undecodable: UInt64 = 0
    public var late: UInt64 = 0
    public var concealedMilliseconds: UInt64 = 0
    public var silenceInsertedMilliseconds: UInt64 = 0
    public var resyncs: UInt64 = 0
    /// Dropped because the sender is outside the allow-list.
    public var sourceNotAllowed: UInt64 = 0
    /// Dropped because the leg is locked to another sender.
    public var wrongSource: UInt64 = 0
    /// Datagrams dropped before decoding: not RTP (random bytes, version other than 2), shorter than
    /// their header says (fixed header, CSRC list, extension, padding), longer than the receive buffer,
    /// or from a second SSRC that has not (yet) taken over. Filled in by the packet source.
    public var malformed: UInt64 = 0
    /// Packets dropped because the receive queue was full (the leg fell seconds behind) or carried no
    /// payload at all. Filled in by the packet source.
    public var queueOverflow: UInt64 = 0
    /// SRTP packets that failed authentication or the replay check (a wrong key, a forged or replayed
    /// packet). Filled in by the packet source.
    public var srtpAuthFailed: UInt64 = 0
    public init() {}
}

/// A leg's reception at one moment, flat: the numbers the API, `leg.end` and the metrics show.
public struct RTPTotals: Sendable, Equatable {
    public var packets: UInt64 = 0
    /// Arrived, in time or not (duplicates excluded), as RFC 3550 counts "received".
    public var received: UInt64 = 0
    public var expected: UInt64 = 0
    public var lost: UInt64 = 0
    public var reordered: UInt64 = 0
    public var duplicates: UInt64 = 0
    public var late: UInt64 = 0
    public var jitterMilliseconds: Double = 0
    public var ssrcChanges: UInt64 = 0
    public var concealedMilliseconds: UInt64 = 0
    public var comfortNoise: UInt64 = 0
    public var telephoneEvents: UInt64 = 0
    public var unknownPayloadType: UInt64 = 0
    public var undecodable: UInt64 = 0
    public var sourceNotAllowed: UInt64 = 0
    public var wrongSource: UInt64 = 0
    public var malformed: UInt64 = 0
    public var queueOverflow: UInt64 = 0
    public var srtpAuthFailed: UInt64 = 0

    public init() {}

    public init(counters c: LegCounters, statistics s: ReceptionStatistics) {
        packets = c.packets
        received = s.arrived
        expected = s.expected
        lost = s.lost
        reordered = s.reordered
        duplicates = s.allDuplicates
        late = c.late
        jitterMilliseconds = s.jitterMilliseconds
        ssrcChanges = s.ssrcChanges
        concealedMilliseconds = c.concealedMilliseconds
        comfortNoise = c.comfortNoise
        telephoneEvents = c.telephoneEvents
        unknownPayloadType = c.unknownPayloadType
        undecodable = c.undecodable
        sourceNotAllowed = c.sourceNotAllowed
        wrongSource = c.wrongSource
        malformed = c.malformed
        queueOverflow = c.queueOverflow
        srtpAuthFailed = c.srtpAuthFailed
    }
}

/// One reception counter: its name on the wire, where it lives, and the reason label it carries in
/// `emotiontap_rtp_packets_dropped_total` when it counts dropped packets.
public struct RTPCounterField: @unchecked Sendable {
    // Key paths are immutable values; the table is built once and only read.
    public enum Value {
        case count(WritableKeyPath<RTPTotals, UInt64>)
        /// Rounded to 2 decimals on the wire.
        case milliseconds(WritableKeyPath<RTPTotals, Double>)
    }

    public let name: String
    public let value: Value
    public let dropReason: String?

    init(_ name: String, _ keyPath: WritableKeyPath<RTPTotals, UInt64>, dropReason: String? = nil) {
        self.name = name
        value = .count(keyPath)
        self.dropReason = dropReason
    }

    init(_ name: String, milliseconds keyPath: WritableKeyPath<RTPTotals, Double>) {
        self.name = name
        value = .milliseconds(keyPath)
        dropReason = nil
    }
}

extension RTPTotals {
    /// The one list of reception counters (as rtpengine keeps one): `GET /v1/legs`, `leg.end` and the
    /// metrics are all written from it, in this order.
    public static let fields: [RTPCounterField] = [
        RTPCounterField("packets", \.packets),
        RTPCounterField("received", \.received),
        RTPCounterField("expected", \.expected),
        RTPCounterField("lost", \.lost),
        RTPCounterField("reordered", \.reordered),
        RTPCounterField("duplicates", \.duplicates, dropReason: "duplicate"),
        RTPCounterField("late", \.late, dropReason: "late"),
        RTPCounterField("jitter_ms", milliseconds: \.jitterMilliseconds),
        RTPCounterField("ssrc_changes", \.ssrcChanges),
        RTPCounterField("concealed_ms", \.concealedMilliseconds),
        RTPCounterField("comfort_noise", \.comfortNoise),
        RTPCounterField("telephone_events", \.telephoneEvents),
        RTPCounterField("unknown_payload_type", \.unknownPayloadType, dropReason: "unknown_payload_type"),
        RTPCounterField("undecodable", \.undecodable, dropReason: "undecodable"),
        RTPCounterField("source_not_allowed", \.sourceNotAllowed, dropReason: "source_not_allowed"),
        RTPCounterField("wrong_source", \.wrongSource, dropReason: "wrong_source"),
        RTPCounterField("malformed", \.malformed, dropReason: "malformed"),
        RTPCounterField("queue_overflow", \.queueOverflow, dropReason: "queue_overflow"),
        RTPCounterField("srtp_auth_failed", \.srtpAuthFailed, dropReason: "srtp_auth_failed"),
    ]
}
