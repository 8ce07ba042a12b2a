import Foundation

/// A small inline bar of a 0...1 share, for a table cell.
enum SVGBar {
    static let width = 100.0
    static let height = 10.0

    /// nil draws nothing: a missing value reads as "-" in its own column.
    static func render(_ share: Double?, label: String) -> HTML {
        guard let share = Cell.usable(share) else { return HTML(text: Cell.missing) }
        let filled = String(format: "%.1f", min(max(share, 0), 1) * width)
        let size = "width=\"\(String(format: "%.0f", width))\" height=\"\(String(format: "%.0f", height))\""
        var out = "<svg class=\"bar\" viewBox=\"0 0 \(String(format: "%.0f %.0f", width, height))\" \(size) "
        out += "role=\"img\" aria-label=\"\(HTML.escape(label))\">"
        out += "<title>\(HTML.escape(label))</title>"
        out += "<rect class=\"bar-back\" \(size)/>"
        out += "<rect class=\"bar-fill\" width=\"\(filled)\" height=\"\(String(format: "%.0f", height))\"/>"
        out += "</svg>"
        return HTML(raw: out)
    }
}
