/// How a report is written out: for a terminal, for a spreadsheet, or as one page for a browser.
public enum ReportFormat: String, Sendable, CaseIterable {
    /// Aligned plain-text tables and sparklines.
    case text
    /// RFC 4180 CSV with a header row.
    case csv
    /// One self-contained HTML page (inline style and SVG; no script, nothing fetched).
    case html
}
