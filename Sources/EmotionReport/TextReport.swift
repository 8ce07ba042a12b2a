import EmotionHistory

/// Reports as plain text for a terminal: a header block, aligned tables and, for calls, a compact
/// timeline per leg. Every report ends with a newline.
enum TextReport {
    // MARK: - Call

    static func call(_ report: CallReport) -> String {
        var out = TextTable.keyValue([
            ("Call", report.callID),
            ("Agent", Cell.text(report.agentID)),
            ("Started", Cell.text(report.startedAt)),
            ("Escalations", String(report.escalations)),
        ]).lines()
        out.append("")
        if report.legs.isEmpty {
            out.append("No legs.")
        } else {
            out += table(ReportColumns.leg, report.legs).lines()
            for leg in report.legs {
                out.append("")
                out += timeline(leg)
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// A leg's upset as a sparkline, then its state changes and escalations at their media times.
    static func timeline(_ leg: LegTimeline) -> [String] {
        let points = leg.points
        var heading = "Leg \(TextTable.printable(leg.record.legID)) (\(TextTable.printable(leg.record.role)))"
        var out: [String] = []
        if let first = points.first, let last = points.last {
            let size = Sparkline.bucketSize(count: points.count)
            let plural = points.count == 1 ? "window" : "windows"
            heading += ": \(points.count) \(plural), \(Cell.seconds(first.time)) to \(Cell.seconds(last.time))"
            if size > 1 { heading += ", \(size) windows per column" }
            out.append(heading)
            out.append("  upset |\(Sparkline.render(points.map(\.upset)))|")
        } else {
            out.append(heading + ": no analysis windows")
        }

        var changes = TextTable(
            columns: [.init(header: "", alignment: .right), .init(header: "", alignment: .left)],
            showsHeader: false, indent: "    ", padsLastColumn: false)
        for change in leg.stateChanges {
            changes.append([Cell.seconds(change.time), "\(change.from) -> \(change.to)"])
        }
        out.append(changes.rows.isEmpty ? "  state changes: none" : "  state changes:")
        out += changes.lines()

        var escalations = TextTable(
            columns: [
                .init(header: "", alignment: .right), .init(header: "", alignment: .left),
                .init(header: "", alignment: .left),
            ],
            showsHeader: false, indent: "    ", padsLastColumn: false)
        for mark in leg.escalations {
            escalations.append([
                Cell.seconds(mark.mediaTime), "after \(Cell.seconds(mark.upsetSeconds)) upset", mark.timestamp,
            ])
        }
        out.append(escalations.rows.isEmpty ? "  escalations: none" : "  escalations:")
        out += escalations.lines()
        return out
    }

    // MARK: - Agent

    static func agent(_ report: AgentReport) -> String {
        var out = TextTable.keyValue([
            ("Agent", report.agentID),
            ("Since", Cell.text(report.since)),
            ("Until", Cell.text(report.until)),
            ("Calls", String(report.calls.count)),
            ("Ended calmer", Cell.percent(report.endedCalmerShare)),
            ("Escalation rate", Cell.percent(report.escalationRate)),
            ("Mean customer upset", Cell.percent(report.meanCustomerUpset)),
        ]).lines()
        out.append("")
        out += table(ReportColumns.agentCall, report.calls).lines()
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: - Period

    static func period(_ report: PeriodReport) -> String {
        var out = [report.grouping == .agent ? "Calls by agent" : "Calls by day"]
        out += TextTable.keyValue([
            ("Since", Cell.text(report.since)),
            ("Until", Cell.text(report.until)),
        ]).lines()
        out.append("")
        out += table(ReportColumns.period(report.grouping), report.rows).lines()
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: - Tables

    static func table<Row>(_ columns: [ReportColumn<Row>], _ rows: [Row]) -> TextTable {
        var table = TextTable(
            columns: columns.map { .init(header: $0.header.uppercased(), alignment: $0.numeric ? .right : .left) })
        for row in rows { table.append(columns.map { $0.value(row) }) }
        return table
    }
}
