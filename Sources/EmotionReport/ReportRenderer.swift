import EmotionHistory

/// Writes history reports as text, CSV or HTML. The output depends only on the report: the same
/// report always gives the same bytes.
public enum ReportRenderer {
    /// A call: its legs' summaries and each leg's upset over time.
    public static func render(_ report: CallReport, as format: ReportFormat) -> String {
        switch format {
        case .text: TextReport.call(report)
        case .csv: CSVReport.call(report)
        case .html: HTMLReport.call(report)
        }
    }

    /// An agent over a period: summary figures and one row per call.
    public static func render(_ report: AgentReport, as format: ReportFormat) -> String {
        switch format {
        case .text: TextReport.agent(report)
        case .csv: CSVReport.agent(report)
        case .html: HTMLReport.agent(report)
        }
    }

    /// Every agent or every day over a period: one row each.
    public static func render(_ report: PeriodReport, as format: ReportFormat) -> String {
        switch format {
        case .text: TextReport.period(report)
        case .csv: CSVReport.period(report)
        case .html: HTMLReport.period(report)
        }
    }
}
