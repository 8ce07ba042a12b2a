/// A plain-text table for a terminal: each column as wide as its widest cell, numbers
/// right-aligned, and every line padded to the same width so the table reads as a block.
struct TextTable {
    enum Alignment: Sendable { case left, right }

    struct Column: Sendable {
        var header: String
        var alignment: Alignment
    }

    var columns: [Column]
    var rows: [[String]] = []
    /// Without a header there is no rule line either (key-value blocks, event lists).
    var showsHeader = true
    /// Put before every line, to nest a table under a heading.
    var indent = ""
    /// Tables pad their last column too, so every line has the same width; label-value blocks and
    /// lists do not, to leave no trailing spaces.
    var padsLastColumn = true

    static let separator = "  "

    init(columns: [Column], showsHeader: Bool = true, indent: String = "", padsLastColumn: Bool = true) {
        self.columns = columns
        self.showsHeader = showsHeader
        self.indent = indent
        self.padsLastColumn = padsLastColumn
    }

    /// A headerless two-column block of labels and values.
    static func keyValue(_ pairs: [(String, String)], indent: String = "") -> TextTable {
        var table = TextTable(
            columns: [.init(header: "", alignment: .left), .init(header: "", alignment: .left)],
            showsHeader: false, indent: indent, padsLastColumn: false)
        for (key, value) in pairs { table.append([key, value]) }
        return table
    }

    mutating func append(_ row: [String]) { rows.append(row) }

    func lines() -> [String] {
        let body = rows.map { row in columns.indices.map { $0 < row.count ? Self.printable(row[$0]) : "" } }
        let headers = columns.map { Self.printable($0.header) }
        var widths = showsHeader ? headers.map(\.count) : Array(repeating: 0, count: columns.count)
        for row in body {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            let padded = cells.enumerated().map { i, cell in
                let isLast = i == cells.count - 1
                let width = isLast && !padsLastColumn && columns[i].alignment == .left ? cell.count : widths[i]
                let fill = String(repeating: " ", count: width - cell.count)
                return columns[i].alignment == .right ? fill + cell : cell + fill
            }
            return indent + padded.joined(separator: Self.separator)
        }
        var out: [String] = []
        if showsHeader {
            out.append(line(headers))
            out.append(line(widths.map { String(repeating: "-", count: $0) }))
        }
        out += body.map(line)
        return out
    }

    func render() -> String { lines().joined(separator: "\n") }

    /// Control characters (newlines, tabs, terminal escape sequences) from stored values become
    /// spaces: they would break the alignment or, worse, drive the terminal.
    static func printable(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            out.append(scalar.properties.generalCategory == .control ? " " : scalar)
        }
        return String(out)
    }
}
