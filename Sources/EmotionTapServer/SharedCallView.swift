import EmotionHistory
import EmotionProtocol
import Foundation

/// What other instances sharing the store hold of a call: their legs that have not ended, each with
/// its newest stored state. The store is behind the live state by the ingestor's batching (a
/// fraction of a second); a leg that has not had its first packet yet is not in it.
public struct SharedCallView: Sendable {
    public let store: any HistoryStore
    /// This instance's name: its own legs come from memory, not from here.
    public let instance: String

    public init(store: any HistoryStore, instance: String) {
        self.store = store
        self.instance = instance
    }

    public struct RemoteLeg: Sendable, Equatable {
        public var record: LegRecord
        public var role: String { record.role }
        public var state: String
        public var upset: Double?
        public var escalated: Bool
        /// When the state was last stored.
        public var asOf: String?
    }

    public func remoteLegs(callID: String) async throws(HistoryError) -> [RemoteLeg] {
        var out: [RemoteLeg] = []
        for leg in try await store.legs(LegQuery(callID: callID)) where leg.endedAt == nil && leg.instance != instance {
            var r = RemoteLeg(record: leg, state: "calm", upset: nil, escalated: false, asOf: nil)
            if let latest = try await store.latestEvent(legID: leg.legID, type: "emotion"),
                case .emotion(let e)? = (try? Event(decoding: latest.body))?.body
            {
                r.state = e.state.rawValue
                r.upset = e.reading.upset
                r.asOf = latest.timestamp
            }
            r.escalated = try await store.latestEvent(legID: leg.legID, type: "escalate") != nil
            out.append(r)
        }
        return out
    }

    static func describe(_ r: RemoteLeg) -> JSON {
        .object([
            ("leg_id", .string(r.record.legID)), ("call_id", .string(r.record.callID)),
            ("role", .string(r.record.role)), ("agent_id", .optional(r.record.agentID)),
            ("tags", .object(r.record.tags.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            ("state", .string("active")), ("mood", .string(r.state)),
            ("upset", r.upset.map { .number($0, places: 3) } ?? .null), ("escalated", .bool(r.escalated)),
            ("codec", .optional(r.record.codec)), ("instance", .string(r.record.instance)),
            ("remote", .bool(true)), ("as_of", .optional(r.asOf)),
        ])
    }
}
