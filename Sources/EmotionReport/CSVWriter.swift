import Foundation

/// CSV as RFC 4180 has it: a field is quoted when it holds a comma, a double quote, CR or LF, with
/// its quotes doubled; every record, the last one too, ends with CRLF.
struct CSVWriter {
    private(set) var output = ""

    /// The header row comes first.
    init(header: [String]) { append(header) }

    mutating func append(_ record: [String]) {
        output += record.map(Self.field).joined(separator: ",")
        output += "\r\n"
    }

    static func field(_ value: String) -> String {
        // Unicode scalars, not Characters: "\r\n" is a single Character and would not match "\n".
        let needsQuotes = value.unicodeScalars.contains { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" }
        guard needsQuotes else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
