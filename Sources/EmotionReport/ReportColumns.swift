import EmotionHistory

/// One column of a summary table, as both text and HTML show it: one list per table feeds both
/// outputs, so they cannot drift apart.
struct ReportColumn<Row> {
    var header: String
    /// What the column means, for HTML header tooltips.
    var help: String
    /// Numbers are right-aligned.
    var numeric: Bool
    var value: (Row) -> String

    init(_ header: String, _ help: String, numeric: Bool = false, _ value: @escaping (Row) -> String) {
        self.header = header
        self.help = help
        self.numeric = numeric
        self.value = value
    }
}

enum ReportColumns {
    /// A call's legs, one row each.
    static var leg: [ReportColumn<LegTimeline>] {
        [
            .init("Leg", "Leg id") { $0.record.legID },
            .init("Role", "Whose audio the leg carries") { $0.record.role },
            .init("Agent", "Agent id") { Cell.text($0.record.agentID) },
            .init("Codec", "Audio codec") { Cell.text($0.record.codec) },
            .init("Started", "When the leg started") { Cell.text($0.record.startedAt) },
            .init("Ended", "When the leg ended") { Cell.text($0.record.endedAt) },
            .init("End reason", "Why the leg ended") { Cell.text($0.record.endReason) },
            .init("Duration", "Length of the leg", numeric: true) { Cell.seconds($0.record.durationSeconds) },
            .init("Upset", "Share of speech that sounded upset", numeric: true) {
                Cell.percent($0.record.upsetFraction)
            },
            .init("Peak", "Highest upset probability", numeric: true) { Cell.probability($0.record.peakUpset) },
            .init("Start", "Upset probability at the start", numeric: true) {
                Cell.probability($0.record.startUpset)
            },
            .init("End", "Upset probability at the end", numeric: true) { Cell.probability($0.record.endUpset) },
            .init("Calmer", "Ended calmer than it started") { Cell.yesNo($0.record.endedCalmer) },
            .init("Esc", "Escalations", numeric: true) { Cell.count($0.record.escalations) },
        ]
    }

    /// An agent's calls, one row each; the figures are the customer leg's.
    static var agentCall: [ReportColumn<AgentReport.Call>] {
        [
            .init("Call", "Call id") { $0.callID },
            .init("Started", "When the call's first leg started") { Cell.text($0.startedAt) },
            .init("Duration", "Length of the longest leg", numeric: true) { Cell.seconds($0.durationSeconds) },
            .init("Upset", "Share of the customer's speech that sounded upset", numeric: true) {
                Cell.percent($0.customerUpsetFraction)
            },
            .init("Start", "Customer upset probability at the start", numeric: true) {
                Cell.probability($0.customerStartUpset)
            },
            .init("End", "Customer upset probability at the end", numeric: true) {
                Cell.probability($0.customerEndUpset)
            },
            .init("Calmer", "The customer ended calmer than they started") { Cell.yesNo($0.customerEndedCalmer) },
            .init("Esc", "Escalations on the call", numeric: true) { Cell.count($0.escalations) },
        ]
    }

    /// A period report's rows, keyed by agent or by day.
    static func period(_ grouping: PeriodReport.Grouping) -> [ReportColumn<PeriodReport.Row>] {
        [
            .init(grouping == .agent ? "Agent" : "Day", grouping == .agent ? "Agent id" : "Day (UTC)") { $0.key },
            .init("Calls", "Calls", numeric: true) { Cell.count($0.calls) },
            .init("Customer legs", "Customer legs", numeric: true) { Cell.count($0.customerLegs) },
            .init("Upset customers", "Share of customer legs upset for any of their speech", numeric: true) {
                Cell.percent($0.upsetCustomerShare)
            },
            .init("Mean upset", "Mean share of customer speech that sounded upset", numeric: true) {
                Cell.percent($0.meanCustomerUpset)
            },
            .init("Ended calmer", "Share of calls where the customer ended calmer", numeric: true) {
                Cell.percent($0.endedCalmerShare)
            },
            .init("Escalation rate", "Share of calls with an escalation", numeric: true) {
                Cell.percent($0.escalationRate)
            },
        ]
    }
}
