/// RFC 3550 reception statistics for one source (appendix A.1 and A.8), extended with duplicate
/// and reorder counts. Pure arithmetic: the caller feeds sequence numbers, timestamps and arrival times.
public struct ReceptionStatistics: Sendable, Equatable {
    public private(set) var received: UInt64 = 0
    public private(set) var duplicates: UInt64 = 0
    public private(set) var reordered: UInt64 = 0
    public private(set) var ssrcChanges: UInt64 = 0
    /// Interarrival jitter in timestamp units (J += (|D| - J) / 16).
    public private(set) var jitter: Double = 0
    public private(set) var ssrc: UInt32?

    private var baseSequence: UInt32 = 0
    private var maxSequence: UInt16 = 0
    private var cycles: UInt32 = 0
    private var started = false
    private var recent: UInt64 = 0  // bit i set: (maxSequence - i) was received
    private var lastTransit: Double?
    private let clockRate: Double

    public init(clockRate: Int) {
        self.clockRate = Double(clockRate)
    }

    /// Packets expected from the first to the highest sequence number seen.
    public var expected: UInt64 {
        started ? UInt64(cycles) + UInt64(maxSequence) - UInt64(baseSequence) + 1 : 0
    }

    /// Packets the receive queue dropped before they were recorded here (set by the owner from the
    /// queue's counters): too late for playout, or duplicates of a packet still queued. They did
    /// arrive, so RFC 3550 counts the late ones as received.
    public var lateBeforeDelivery: UInt64 = 0
    public var duplicatesBeforeDelivery: UInt64 = 0

    /// Packets that arrived, in time or not (duplicates excluded).
    public var arrived: UInt64 { received + lateBeforeDelivery }
    public var allDuplicates: UInt64 { duplicates + duplicatesBeforeDelivery }

    /// Cumulative loss: expected minus arrived (never negative here; duplicates are not counted as received).
    public var lost: UInt64 { expected > arrived ? expected - arrived : 0 }

    public var jitterMilliseconds: Double { jitter / clockRate * 1000 }

    /// What one packet was, for the caller's playout.
    public enum Disposition: Sendable, Equatable {
        case inOrder(gap: Int)  // gap = packets missing just before this one
        case reordered
        case duplicate
        case newSource
    }

    public mutating func record(
        sequence: UInt16, timestamp: UInt32, ssrc newSSRC: UInt32, arrival: Double
    ) -> Disposition {
        if ssrc != newSSRC {
            let wasStarted = ssrc != nil
            // A new source (re-INVITE): restart sequence tracking, keep the counters.
            ssrc = newSSRC
            if wasStarted { ssrcChanges += 1 }
            started = true
            baseSequence = UInt32(sequence)
            maxSequence = sequence
            cycles = 0
            recent = 1
            lastTransit = nil
            received += 1
            updateJitter(timestamp: timestamp, arrival: arrival)
            return wasStarted ? .newSource : .inOrder(gap: 0)
        }
        let delta = Int(Int16(bitPattern: sequence &- maxSequence))
        if delta > 0 {
            if sequence < maxSequence { cycles &+= 65536 }
            recent = delta >= 64 ? 1 : (recent << UInt64(delta)) | 1
            maxSequence = sequence
            received += 1
            updateJitter(timestamp: timestamp, arrival: arrival)
            return .inOrder(gap: delta - 1)
        }
        let behind = -delta
        if behind < 64, recent & (1 << UInt64(behind)) != 0 {
            duplicates += 1
            return .duplicate
        }
        if behind < 64 { recent |= 1 << UInt64(behind) }
        received += 1
        reordered += 1
        return .reordered
    }

    /// A packet that oRTP already put back in order but that arrived after a later one
    /// (oRTP sorts each read by sequence number, so this is the only trace of the reordering).
    public mutating func countReorderedArrival() {
        reordered += 1
    }

    private mutating func updateJitter(timestamp: UInt32, arrival: Double) {
        let transit = arrival * clockRate - Double(timestamp)
        if let last = lastTransit {
            var d = transit - last
            // Timestamps wrap at 2^32.
            if d > 2_147_483_648 { d -= 4_294_967_296 } else if d < -2_147_483_648 { d += 4_294_967_296 }
            jitter += (abs(d) - jitter) / 16
        }
        lastTransit = transit
    }
}
