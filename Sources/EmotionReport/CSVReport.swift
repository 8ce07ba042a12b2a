import EmotionHistory

/// Reports as CSV for spreadsheets and scripts: one header row, then one record per timeline point
/// (calls), per call (agents) or per key (periods).
enum CSVReport {
    static func call(_ report: CallReport) -> String {
        var csv = CSVWriter(header: ["call_id", "leg_id", "role", "agent_id", "media_s", "upset", "state"])
        for leg in report.legs {
            for point in leg.points {
                csv.append([
                    report.callID, leg.record.legID, leg.record.role, CSVField.text(leg.record.agentID),
                    CSVField.seconds(point.time), CSVField.fraction(point.upset), point.state,
                ])
            }
        }
        return csv.output
    }

    static func agent(_ report: AgentReport) -> String {
        var csv = CSVWriter(header: [
            "agent_id", "call_id", "started_at", "duration_s", "customer_upset_fraction", "customer_start_upset",
            "customer_end_upset", "customer_ended_calmer", "escalations",
        ])
        for call in report.calls {
            csv.append([
                report.agentID, call.callID, call.startedAt, CSVField.seconds(call.durationSeconds),
                CSVField.fraction(call.customerUpsetFraction), CSVField.fraction(call.customerStartUpset),
                CSVField.fraction(call.customerEndUpset), CSVField.bool(call.customerEndedCalmer),
                CSVField.count(call.escalations),
            ])
        }
        return csv.output
    }

    static func period(_ report: PeriodReport) -> String {
        var csv = CSVWriter(header: [
            report.grouping == .agent ? "agent_id" : "day", "calls", "customer_legs", "upset_customer_share",
            "mean_customer_upset", "ended_calmer_share", "escalation_rate",
        ])
        for row in report.rows {
            csv.append([
                row.key, CSVField.count(row.calls), CSVField.count(row.customerLegs),
                CSVField.fraction(row.upsetCustomerShare), CSVField.fraction(row.meanCustomerUpset),
                CSVField.fraction(row.endedCalmerShare), CSVField.fraction(row.escalationRate),
            ])
        }
        return csv.output
    }
}
