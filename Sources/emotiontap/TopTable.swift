import ArgumentParser
import Foundation

// MARK: What GET /v1/legs answers

/// One leg as `GET /v1/legs` describes it: the fields `emotiontap top` shows.
struct TopLeg: Decodable, Equatable {
    struct RTP: Decodable, Equatable {
        var received: UInt64
        var expected: UInt64
        var lost: UInt64
    }

    var callID: String
    var role: String
    var agentID: String?
    var state: String
    var mood: String
    var upset: Double?
    var escalated: Bool
    var codec: String?
    var mediaSeconds: Double
    var rtp: RTP

    enum CodingKeys: String, CodingKey {
        case callID = "call_id"
        case role
        case agentID = "agent_id"
        case state, mood, upset, escalated, codec
        case mediaSeconds = "media_s"
        case rtp
    }

    /// Lost over expected (RFC 3550's cumulative loss); nil before any packet.
    var lossFraction: Double? {
        rtp.expected > 0 ? Double(rtp.lost) / Double(rtp.expected) : nil
    }

    /// What the STATE column says: the mood once media flows, the leg's state before and after.
    var shownState: String { state == "active" ? mood : state }

    /// The body of `GET /v1/legs`: `{"legs": [...]}`.
    static func decodeList(_ body: String) throws -> [TopLeg] {
        struct List: Decodable { var legs: [TopLeg] }
        return try JSONDecoder().decode(List.self, from: Data(body.utf8)).legs
    }
}

/// The row order `--sort` picks.
enum TopSort: String, CaseIterable, ExpressibleByArgument {
    /// Most upset first; legs with no reading yet last.
    case upset
    /// By call id, then role.
    case call
    /// Highest loss fraction first, then most packets lost.
    case loss

    func sorted(_ legs: [TopLeg]) -> [TopLeg] {
        legs.sorted { a, b in
            switch self {
            case .upset:
                let (x, y) = (a.upset ?? -1, b.upset ?? -1)
                if x != y { return x > y }
            case .loss:
                let (x, y) = (a.lossFraction ?? -1, b.lossFraction ?? -1)
                if x != y { return x > y }
                if a.rtp.lost != b.rtp.lost { return a.rtp.lost > b.rtp.lost }
            case .call:
                break
            }
            return (a.callID, a.role) < (b.callID, b.role)
        }
    }
}

// MARK: The screen

/// One refresh of `emotiontap top` as lines: a header, the column titles, one row per leg. Every row is
/// `TopTable.width` characters (under 120); with `color`, upset and escalated legs are marked in red.
struct TopTable {
    enum Align { case left, right }

    struct Column {
        let title: String
        let width: Int
        let align: Align
    }

    static let barWidth = 8
    static let columns: [Column] = [
        Column(title: "CALL", width: 18, align: .left),
        Column(title: "ROLE", width: 9, align: .left),
        Column(title: "AGENT", width: 12, align: .left),
        Column(title: "CODEC", width: 9, align: .left),
        Column(title: "STATE", width: 7, align: .left),
        Column(title: "UPSET", width: 5 + barWidth, align: .left),
        Column(title: "ESC", width: 3, align: .left),
        Column(title: "RECEIVED", width: 8, align: .right),
        Column(title: "LOST", width: 6, align: .right),
        Column(title: "LOSS%", width: 6, align: .right),
        Column(title: "MEDIA", width: 7, align: .right),
    ]
    static let gap = "  "
    static let width = columns.map(\.width).reduce(0, +) + gap.count * (columns.count - 1)

    var legs: [TopLeg]
    var time: Date
    /// The `--call` filter, named in the header.
    var call: String?
    var color: Bool

    /// The lines to print; at most `maxLines` (the terminal's height), the rows cut with a note when they
    /// do not all fit.
    func lines(maxLines: Int? = nil) -> [String] {
        let lines = [header(), titles()]
        var rows = legs.map(row)
        if rows.isEmpty {
            rows = [call.map { "(no active legs for call \(Self.printable($0)))" } ?? "(no active legs)"]
        }
        if let maxLines, lines.count + rows.count > maxLines {
            let room = max(0, maxLines - lines.count - 1)
            let hidden = rows.count - room
            rows = Array(rows.prefix(room)) + ["… \(hidden) more legs (--call ID shows one call)"]
        }
        return lines + rows
    }

    func header() -> String {
        let received = legs.reduce(UInt64(0)) { $0 + $1.rtp.received }
        let lost = legs.reduce(UInt64(0)) { $0 + $1.rtp.lost }
        let expected = legs.reduce(UInt64(0)) { $0 + $1.rtp.expected }
        let upset = legs.filter { $0.mood == "upset" }.count
        let escalated = legs.filter(\.escalated).count
        var text = Self.clock(time) + "  "
        if let call { text += "call \(Self.printable(call)): " }
        text += "legs \(legs.count) active, \(upset) upset, \(escalated) escalated"
        text += "   packets \(received) received, \(lost) lost (\(Self.percent(lost, of: expected)) loss)"
        return text
    }

    func titles() -> String {
        let text = zip(Self.columns, Self.columns.map(\.title)).map { Self.pad($1, $0) }.joined(separator: Self.gap)
        return color ? "\u{1b}[1m" + text + "\u{1b}[0m" : text
    }

    func row(_ leg: TopLeg) -> String {
        let upsetCell: String
        if let upset = leg.upset {
            let filled = min(Self.barWidth, max(0, Int((upset * Double(Self.barWidth)).rounded())))
            upsetCell =
                String(format: "%.2f ", upset) + String(repeating: "#", count: filled)
                + String(repeating: " ", count: Self.barWidth - filled)
        } else {
            upsetCell = "-"
        }
        let cells = [
            leg.callID, leg.role, leg.agentID ?? "-", leg.codec ?? "-", leg.shownState, upsetCell,
            leg.escalated ? "yes" : "", "\(leg.rtp.received)", "\(leg.rtp.lost)",
            leg.lossFraction == nil ? "-" : Self.percent(leg.rtp.lost, of: leg.rtp.expected),
            String(format: "%.1fs", leg.mediaSeconds),
        ]
        var padded = zip(Self.columns, cells).map { Self.pad($1, $0) }
        if color {
            // Colour goes on after padding, so the escape codes take no room in the layout.
            if leg.shownState == "upset" { padded[4] = Self.red(padded[4]) }
            if leg.escalated { padded[6] = Self.red(padded[6]) }
        }
        return padded.joined(separator: Self.gap)
    }

    // MARK: Cells

    /// `text` made printable, cut to the column with an ellipsis, padded to its width.
    static func pad(_ text: String, _ column: Column) -> String {
        var cell = printable(text)
        if cell.count > column.width { cell = String(cell.prefix(column.width - 1)) + "…" }
        let fill = String(repeating: " ", count: column.width - cell.count)
        return column.align == .left ? cell + fill : fill + cell
    }

    /// Ids come from the switch: control characters (a terminal escape among them) become "?".
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : Character($0) })
    }

    static func percent(_ part: UInt64, of whole: UInt64) -> String {
        String(format: "%.1f%%", whole > 0 ? Double(part) / Double(whole) * 100 : 0)
    }

    static func red(_ text: String) -> String { "\u{1b}[31m" + text + "\u{1b}[0m" }

    static func clock(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return formatter.string(from: date)
    }
}
