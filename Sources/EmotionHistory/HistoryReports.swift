import EmotionProtocol
import Foundation

/// What `emotiontap report` shows, computed from the store the same way for SQLite and PostgreSQL.
/// Times on timelines are media seconds from the leg's first packet, as the events carry them.
public struct CallReport: Sendable, Equatable {
    public var callID: String
    public var legs: [LegTimeline]
    /// The agent (the first leg that names one).
    public var agentID: String? { legs.lazy.compactMap(\.record.agentID).first }
    public var startedAt: String { legs.map(\.record.startedAt).min() ?? "" }
    public var escalations: Int { legs.reduce(0) { $0 + $1.escalations.count } }
}

/// One leg over time: each analysis window's upset probability and state, state changes, escalations.
public struct LegTimeline: Sendable, Equatable {
    public struct Point: Sendable, Equatable {
        /// End of the window, media seconds.
        public var time: Double
        /// nil for a window without enough speech.
        public var upset: Double?
        public var state: String
    }
    public struct StateChange: Sendable, Equatable {
        public var time: Double
        public var from: String
        public var to: String
    }
    public struct EscalationMark: Sendable, Equatable {
        /// Wall-clock time of the event; `mediaTime` is when on the timeline (the last window before it).
        public var timestamp: String
        public var mediaTime: Double
        public var upsetSeconds: Double
    }

    public var record: LegRecord
    public var points: [Point]
    public var stateChanges: [StateChange]
    public var escalations: [EscalationMark]
}

/// One agent over a period: how their customers sounded and how calls ended.
public struct AgentReport: Sendable, Equatable {
    public struct Call: Sendable, Equatable {
        public var callID: String
        public var startedAt: String
        /// The customer's leg summary (nil fields: no customer leg, or it has not ended).
        public var customerUpsetFraction: Double?
        public var customerStartUpset: Double?
        public var customerEndUpset: Double?
        public var customerEndedCalmer: Bool?
        public var escalations: Int
        public var durationSeconds: Double?
    }

    public var agentID: String
    public var since: String?
    public var until: String?
    public var calls: [Call]

    /// Calls where the customer ended calmer than they started, out of those where it could be told.
    public var endedCalmerShare: Double? { Self.share(calls.compactMap(\.customerEndedCalmer)) }
    /// Calls with at least one escalation.
    public var escalationRate: Double? {
        calls.isEmpty ? nil : Double(calls.filter { $0.escalations > 0 }.count) / Double(calls.count)
    }
    public var meanCustomerUpset: Double? {
        let values = calls.compactMap(\.customerUpsetFraction)
        return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    static func share(_ flags: [Bool]) -> Double? {
        flags.isEmpty ? nil : Double(flags.filter { $0 }.count) / Double(flags.count)
    }
}

/// Every agent, or every day, over a period: one row each.
public struct PeriodReport: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        /// The agent id, or the day (YYYY-MM-DD, UTC).
        public var key: String
        public var calls: Int
        public var customerLegs: Int
        /// Share of customer legs that were upset for any of their speech... (`upset_fraction` > 0).
        public var upsetCustomerShare: Double?
        public var meanCustomerUpset: Double?
        public var endedCalmerShare: Double?
        public var escalationRate: Double?
    }

    public enum Grouping: String, Sendable { case agent, day }

    public var grouping: Grouping
    public var since: String?
    public var until: String?
    public var rows: [Row]
}

public enum HistoryReports {
    /// A call's legs with their timelines; an unknown call is an error that says so.
    public static func call(_ id: String, in store: any HistoryStore) async throws(HistoryError) -> CallReport {
        let legs = try await store.legs(LegQuery(callID: id))
        guard !legs.isEmpty else { throw HistoryError("no call \(id) in the history store (\(store.location))") }
        var timelines: [LegTimeline] = []
        for leg in legs {
            let events = try await store.events(legID: leg.legID, types: ["emotion", "state", "escalate"])
            timelines.append(timeline(leg, events))
        }
        return CallReport(callID: id, legs: timelines)
    }

    static func timeline(_ leg: LegRecord, _ events: [StoredEvent]) -> LegTimeline {
        var t = LegTimeline(record: leg, points: [], stateChanges: [], escalations: [])
        var lastTime = 0.0
        for e in events {
            guard let event = try? Event(decoding: e.body) else { continue }
            switch event.body {
            case .emotion(let m):
                lastTime = m.reading.end
                t.points.append(.init(time: m.reading.end, upset: m.reading.upset, state: m.state.rawValue))
            case .state(let s):
                lastTime = s.mediaSeconds
                t.stateChanges.append(.init(time: s.mediaSeconds, from: s.from.rawValue, to: s.to.rawValue))
            case .escalate(let x):
                t.escalations.append(.init(timestamp: e.timestamp, mediaTime: lastTime, upsetSeconds: x.upsetSeconds))
            default:
                break
            }
        }
        return t
    }

    /// An agent's calls over a period; an agent with no legs in it is an error that says so.
    public static func agent(
        _ id: String, since: String?, until: String?, in store: any HistoryStore
    ) async throws(HistoryError) -> AgentReport {
        let legs = try await store.legs(LegQuery(agentID: id, since: since, until: until))
        guard !legs.isEmpty else {
            let period = since == nil && until == nil ? "" : " between \(since ?? "the start") and \(until ?? "now")"
            throw HistoryError("no calls for agent \(id)\(period) in the history store (\(store.location))")
        }
        return AgentReport(agentID: id, since: since, until: until, calls: calls(of: legs))
    }

    /// One row per agent or per day over a period (legs without an agent group as "-").
    public static func period(
        _ grouping: PeriodReport.Grouping, since: String?, until: String?, in store: any HistoryStore
    ) async throws(HistoryError) -> PeriodReport {
        let legs = try await store.legs(LegQuery(since: since, until: until))
        var groups: [String: [LegRecord]] = [:]
        for leg in legs {
            let key =
                switch grouping {
                case .agent: leg.agentID ?? "-"
                case .day: String(leg.startedAt.prefix(10))
                }
            groups[key, default: []].append(leg)
        }
        let rows = groups.keys.sorted().map { key -> PeriodReport.Row in
            let group = groups[key]!
            let calls = calls(of: group)
            let customers = group.filter { $0.role == "customer" }
            let upsetShare = AgentReport.share(customers.compactMap { $0.upsetFraction.map { $0 > 0 } })
            let means = customers.compactMap(\.upsetFraction)
            return PeriodReport.Row(
                key: key, calls: calls.count, customerLegs: customers.count, upsetCustomerShare: upsetShare,
                meanCustomerUpset: means.isEmpty ? nil : means.reduce(0, +) / Double(means.count),
                endedCalmerShare: AgentReport.share(calls.compactMap(\.customerEndedCalmer)),
                escalationRate: calls.isEmpty
                    ? nil : Double(calls.filter { $0.escalations > 0 }.count) / Double(calls.count))
        }
        return PeriodReport(grouping: grouping, since: since, until: until, rows: rows)
    }

    /// Legs grouped into calls, in order of start; the customer's leg gives the call's verdict.
    static func calls(of legs: [LegRecord]) -> [AgentReport.Call] {
        var order: [String] = []
        var byCall: [String: [LegRecord]] = [:]
        for leg in legs {
            if byCall[leg.callID] == nil { order.append(leg.callID) }
            byCall[leg.callID, default: []].append(leg)
        }
        return order.map { id in
            let legs = byCall[id]!
            let customer = legs.first { $0.role == "customer" }
            return AgentReport.Call(
                callID: id, startedAt: legs.map(\.startedAt).min() ?? "",
                customerUpsetFraction: customer?.upsetFraction, customerStartUpset: customer?.startUpset,
                customerEndUpset: customer?.endUpset, customerEndedCalmer: customer?.endedCalmer,
                escalations: legs.reduce(0) { $0 + ($1.escalations ?? 0) },
                durationSeconds: legs.compactMap(\.durationSeconds).max())
        }
    }
}
