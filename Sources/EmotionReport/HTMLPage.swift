// MARK: - Markup

/// Markup that is safe to put in a page: text only gets in escaped, and only the renderers in this
/// module write raw markup.
struct HTML: Sendable {
    var markup: String

    init(raw markup: String) { self.markup = markup }
    init(text: String) { self.markup = Self.escape(text) }

    static func + (lhs: HTML, rhs: HTML) -> HTML { HTML(raw: lhs.markup + rhs.markup) }

    /// Escapes for text and for quoted attribute values alike.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

// MARK: - Page

/// One self-contained page: inline style, no script, nothing loaded from anywhere (no fonts, no
/// images, no links out), so it can be mailed or archived and opens the same offline.
struct HTMLPage {
    struct Column {
        var header: String
        var help: String
        var numeric: Bool
    }

    var title: String
    private var body: [String] = []

    init(title: String) { self.title = title }

    mutating func append(_ html: HTML) { body.append(html.markup) }

    mutating func heading(_ text: String, level: Int = 2) {
        body.append("<h\(level)>\(HTML.escape(text))</h\(level)>")
    }

    /// A short block of labelled facts.
    mutating func facts(_ pairs: [(String, String)]) {
        var out = "<table class=\"facts\">\n"
        for (key, value) in pairs {
            out += "<tr><th scope=\"row\">\(HTML.escape(key))</th><td>\(HTML.escape(value))</td></tr>\n"
        }
        body.append(out + "</table>")
    }

    mutating func table(_ columns: [Column], _ rows: [[HTML]], caption: String? = nil) {
        var out = "<table class=\"data\">\n"
        if let caption { out += "<caption>\(HTML.escape(caption))</caption>\n" }
        out += "<thead><tr>"
        for column in columns {
            let numeric = column.numeric ? " class=\"num\"" : ""
            out +=
                "<th scope=\"col\"\(numeric) title=\"\(HTML.escape(column.help))\">\(HTML.escape(column.header))</th>"
        }
        out += "</tr></thead>\n<tbody>\n"
        for row in rows {
            out += "<tr>"
            for (i, cell) in row.enumerated() {
                let numeric = i < columns.count && columns[i].numeric ? " class=\"num\"" : ""
                out += "<td\(numeric)>\(cell.markup)</td>"
            }
            out += "</tr>\n"
        }
        body.append(out + "</tbody>\n</table>")
    }

    /// A table from one of the shared column lists, with optional extra columns after them.
    mutating func table<Row>(
        _ columns: [ReportColumn<Row>], _ rows: [Row], extra: [(Column, (Row) -> HTML)] = []
    ) {
        let headers = columns.map { Column(header: $0.header, help: $0.help, numeric: $0.numeric) } + extra.map(\.0)
        let cells = rows.map { row in columns.map { HTML(text: $0.value(row)) } + extra.map { $0.1(row) } }
        table(headers, cells)
    }

    func render() -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTML.escape(title))</title>
        <style>
        \(Self.style)
        </style>
        </head>
        <body>
        <main>
        <h1>\(HTML.escape(title))</h1>
        \(body.joined(separator: "\n"))
        </main>
        </body>
        </html>

        """
    }

    /// System fonts only: a web font would be a fetch.
    static let style = """
        body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; background: #fff; }
        main { max-width: 72rem; }
        h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
        table { border-collapse: collapse; margin: 0.5rem 0 1.25rem; }
        th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: left; white-space: nowrap; }
        thead th { border-bottom: 2px solid #999; }
        table.facts th { font-weight: 600; padding-left: 0; }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        svg.timeline { display: block; width: 100%; height: auto; max-width: 60rem; }
        .plot { fill: #fafafa; stroke: #888; stroke-width: 1; }
        .grid { stroke: #d0d0d0; stroke-width: 1; stroke-dasharray: 4 3; }
        .tick { stroke: #888; stroke-width: 1; }
        .label { font-size: 11px; fill: #555; }
        .upset-band { fill: #e53935; fill-opacity: 0.15; }
        .upset-line { fill: none; stroke: #1565c0; stroke-width: 2; stroke-linejoin: round; }
        .upset-dot { fill: #1565c0; }
        .escalation { stroke: #b71c1c; stroke-width: 2; stroke-dasharray: 6 3; }
        svg.bar { vertical-align: middle; }
        .bar-back { fill: #eee; } .bar-fill { fill: #e53935; }
        """
}
