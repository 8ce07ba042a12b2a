import EmotionProtocol
import Foundation

/// Events from the log turned into what the store writes: every event of a leg (heartbeats are not
/// about a leg and are left out), and per leg the fields its `leg.start` and `leg.end` give.
public struct HistoryBatch: Sendable {
    public private(set) var events: [StoredEvent] = []
    /// Per leg in this batch: its record as far as this batch tells (merged into the stored one).
    public private(set) var legs: [String: LegUpdate] = [:]
    /// Leg ids in the order they first appear, so writes are repeatable.
    public private(set) var legOrder: [String] = []
    /// Lines that were not events of protocol v1 (counted, skipped: one bad line never stops the store).
    public private(set) var rejected = 0

    public init() {}

    public var isEmpty: Bool { events.isEmpty && legs.isEmpty }

    /// What one batch knows of a leg; nil fields are left as stored.
    public struct LegUpdate: Sendable, Equatable {
        public var record: LegRecord
        /// A `leg.start` was in the batch (its codec, source and recording fields are set).
        public var started = false
        /// A `leg.end` was in the batch (its end fields and summary are set).
        public var ended = false
        /// The `leg.end` line, kept whole.
        public var summary: String?
    }

    /// Adds one log line; returns false (and counts it) when it is not an event.
    @discardableResult
    public mutating func add(line: Substring) -> Bool {
        let text = String(line)
        guard let event = try? Event(decoding: text) else {
            rejected += 1
            return false
        }
        guard let leg = event.leg else { return true }
        events.append(
            StoredEvent(
                legID: leg.legID, sequence: event.sequence, timestamp: event.timestamp, type: event.type, body: text))
        var update =
            legs[leg.legID]
            ?? {
                legOrder.append(leg.legID)
                return LegUpdate(
                    record: LegRecord(
                        legID: leg.legID, callID: leg.callID, role: leg.role, instance: "", startedAt: event.timestamp))
            }()
        if leg.agentID != nil { update.record.agentID = leg.agentID }
        if !leg.tags.isEmpty { update.record.tags = leg.tags }
        switch event.body {
        case .legStart(let s):
            update.started = true
            update.record.codec = s.codec.rawValue
            update.record.source = s.source
            update.record.recordingSession = s.recording?.session
            update.record.participant = s.recording?.participant
        case .legEnd(let e):
            update.ended = true
            update.summary = text
            update.record.endedAt = event.timestamp
            update.record.endReason = e.reason
            update.record.durationSeconds = e.summary.durationSeconds
            update.record.speechSeconds = e.summary.speechSeconds
            update.record.upsetFraction = e.summary.upsetFraction
            update.record.peakUpset = e.summary.peakUpset
            update.record.startUpset = e.summary.startUpset
            update.record.endUpset = e.summary.endUpset
            update.record.endedCalmer = e.summary.endedCalmer
            update.record.escalations = e.summary.escalations
        default:
            break
        }
        legs[leg.legID] = update
        return true
    }
}
