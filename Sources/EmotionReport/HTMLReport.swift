import EmotionHistory

/// Reports as one self-contained HTML page: summary tables, and for a call an SVG timeline per leg.
/// The class names (`timeline`, `upset-line`, `upset-band`, `escalation`) and `data-leg` are what
/// browser tests look for.
enum HTMLReport {
    // MARK: - Call

    static func call(_ report: CallReport) -> String {
        var page = HTMLPage(title: "Call \(report.callID)")
        page.facts([
            ("Agent", Cell.text(report.agentID)),
            ("Started", Cell.text(report.startedAt)),
            ("Legs", String(report.legs.count)),
            ("Escalations", String(report.escalations)),
        ])
        page.heading("Legs")
        page.table(ReportColumns.leg, report.legs)
        for (index, leg) in report.legs.enumerated() {
            page.heading(legLabel(leg.record))
            page.append(SVGTimeline(leg: leg, index: index).render())
            page.append(events(leg))
        }
        return page.render()
    }

    /// "Customer leg leg-1": which side is which matters more than the id.
    static func legLabel(_ record: LegRecord) -> String {
        let role = record.role.isEmpty ? "Unknown" : record.role.prefix(1).uppercased() + record.role.dropFirst()
        return "\(role) leg \(record.legID)"
    }

    /// The state changes and escalations as a table under the timeline: the same facts, readable
    /// without the picture.
    static func events(_ leg: LegTimeline) -> HTML {
        var rows: [(time: Double, what: String)] = leg.stateChanges.map { ($0.time, "State \($0.from) to \($0.to)") }
        rows += leg.escalations.map {
            ($0.mediaTime, "Escalation after \(Cell.seconds($0.upsetSeconds)) upset (\($0.timestamp))")
        }
        guard !rows.isEmpty else { return HTML(raw: "<p class=\"events\">No state changes or escalations.</p>") }
        // Stable by time: state changes before escalations at the same moment, each in log order.
        let ordered = rows.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }
        var out = "<table class=\"data events\">\n<thead><tr><th scope=\"col\" class=\"num\">Media time</th>"
        out += "<th scope=\"col\">Event</th></tr></thead>\n<tbody>\n"
        for (_, row) in ordered {
            out += "<tr><td class=\"num\">\(HTML.escape(Cell.seconds(row.time)))</td>"
            out += "<td>\(HTML.escape(row.what))</td></tr>\n"
        }
        return HTML(raw: out + "</tbody>\n</table>")
    }

    // MARK: - Agent

    static func agent(_ report: AgentReport) -> String {
        var page = HTMLPage(title: "Agent \(report.agentID)")
        page.facts([
            ("Since", Cell.text(report.since)),
            ("Until", Cell.text(report.until)),
            ("Calls", String(report.calls.count)),
            ("Ended calmer", Cell.percent(report.endedCalmerShare)),
            ("Escalation rate", Cell.percent(report.escalationRate)),
            ("Mean customer upset", Cell.percent(report.meanCustomerUpset)),
        ])
        page.heading("Calls")
        let bar = HTMLPage.Column(header: "Customer upset", help: "Share of the customer's speech", numeric: false)
        page.table(ReportColumns.agentCall, report.calls, extra: [(bar, upsetBar)])
        return page.render()
    }

    static func upsetBar(_ call: AgentReport.Call) -> HTML {
        SVGBar.render(call.customerUpsetFraction, label: "Customer upset \(Cell.percent(call.customerUpsetFraction))")
    }

    // MARK: - Period

    static func period(_ report: PeriodReport) -> String {
        var page = HTMLPage(title: report.grouping == .agent ? "Calls by agent" : "Calls by day")
        page.facts([("Since", Cell.text(report.since)), ("Until", Cell.text(report.until))])
        page.table(ReportColumns.period(report.grouping), report.rows)
        return page.render()
    }
}
