// The report types' memberwise inits are internal to EmotionHistory; the tests build them directly.
@testable import EmotionHistory

/// Small reports built by hand: a call with a customer leg (an upset stretch, a gap without speech,
/// an escalation) and an agent leg, an agent report and a period report.
enum Fixtures {
    typealias Point = LegTimeline.Point

    static func customerLeg(callID: String = "call-1") -> LegTimeline {
        var record = LegRecord(
            legID: "leg-c", callID: callID, role: "customer", instance: "tap-1", startedAt: "2025-03-01T10:00:00Z")
        record.agentID = "agent-7"
        record.codec = "PCMU"
        record.endedAt = "2025-03-01T10:01:00Z"
        record.endReason = "bye"
        record.durationSeconds = 60
        record.upsetFraction = 0.625
        record.peakUpset = 0.93
        record.startUpset = 0.1
        record.endUpset = 0.2
        record.endedCalmer = false
        record.escalations = 1
        let points: [Point] = [
            Point(time: 2, upset: 0.1, state: "calm"),
            Point(time: 4, upset: 0.3, state: "calm"),
            Point(time: 6, upset: nil, state: "calm"),
            Point(time: 8, upset: 0.8, state: "upset"),
            Point(time: 10, upset: 1.0, state: "upset"),
            Point(time: 12, upset: 0.2, state: "calm"),
        ]
        return LegTimeline(
            record: record, points: points,
            stateChanges: [
                .init(time: 8, from: "calm", to: "upset"), .init(time: 12, from: "upset", to: "calm"),
            ],
            escalations: [.init(timestamp: "2025-03-01T10:00:10Z", mediaTime: 10, upsetSeconds: 4)])
    }

    static func agentLeg(callID: String = "call-1") -> LegTimeline {
        var record = LegRecord(
            legID: "leg-a", callID: callID, role: "agent", instance: "tap-1", startedAt: "2025-03-01T10:00:01Z")
        record.agentID = "agent-7"
        return LegTimeline(
            record: record,
            points: [Point(time: 2, upset: 0.05, state: "calm"), Point(time: 4, upset: 0.1, state: "calm")],
            stateChanges: [], escalations: [])
    }

    static func call(id: String = "call-1") -> CallReport {
        CallReport(callID: id, legs: [customerLeg(callID: id), agentLeg(callID: id)])
    }

    static func agent() -> AgentReport {
        AgentReport(
            agentID: "agent-7", since: "2025-03-01T00:00:00Z", until: nil,
            calls: [
                .init(
                    callID: "call-1", startedAt: "2025-03-01T10:00:00Z", customerUpsetFraction: 0.625,
                    customerStartUpset: 0.1, customerEndUpset: 0.2, customerEndedCalmer: false, escalations: 1,
                    durationSeconds: 60),
                .init(
                    callID: "call, \"two\"", startedAt: "2025-03-01T11:00:00Z", customerUpsetFraction: nil,
                    customerStartUpset: nil, customerEndUpset: nil, customerEndedCalmer: nil, escalations: 0,
                    durationSeconds: nil),
            ])
    }

    static func period() -> PeriodReport {
        PeriodReport(
            grouping: .day, since: nil, until: nil,
            rows: [
                .init(
                    key: "2025-03-01", calls: 12, customerLegs: 11, upsetCustomerShare: 0.5, meanCustomerUpset: 0.25,
                    endedCalmerShare: 0.75, escalationRate: 1.0 / 12),
                .init(
                    key: "2025-03-02", calls: 0, customerLegs: 0, upsetCustomerShare: nil, meanCustomerUpset: nil,
                    endedCalmerShare: nil, escalationRate: nil),
            ])
    }
}

/// How many times `needle` occurs in `text`.
func occurrences(of needle: String, in text: String) -> Int {
    text.ranges(of: needle).count
}

/// The markup of the `<svg class="timeline">` element for one leg.
func timelineSVG(leg legID: String, in html: String) -> String? {
    guard let start = html.range(of: "<svg class=\"timeline\" data-leg=\"\(legID)\"") else { return nil }
    guard let end = html.range(of: "</svg>", range: start.upperBound..<html.endIndex) else { return nil }
    return String(html[start.lowerBound..<end.upperBound])
}
