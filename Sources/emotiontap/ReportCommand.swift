import ArgumentParser
import EmotionHistory
import EmotionReport
import EmotionTapServer
import Foundation

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Reports from the call history: one call, one agent, or every day (or agent) over a period.",
        discussion: """
            Reads the store the config names (history.store), or --store. Dates are YYYY-MM-DD (UTC) or
            RFC 3339 times; --until is exclusive, and a plain date there means the end of that day.
            """
    )

    @Option(help: "One call: its legs' upset timelines, states, escalations and summaries.")
    var call: String?
    @Option(help: "One agent: their calls, the share whose customer ended calmer, the escalation rate.")
    var agent: String?
    @Option(help: "Without --call or --agent: one row per day or per agent.")
    var by: PeriodReport.Grouping = .day
    @Option(help: "From this date or time.")
    var since: String?
    @Option(help: "Until this date or time (exclusive; a date counts whole).")
    var until: String?
    @Option(help: "text, csv or html (a self-contained page with SVG timelines).")
    var format: ReportFormat = .text
    @Option(help: "The store: an SQLite path or postgres:// URL (default: the config's history.store).")
    var store: String?
    @Option(help: "YAML config file whose history.store to read.")
    var config: String?
    @Option(name: .shortAndLong, help: "Write the report here instead of standard output.")
    var output: String?

    func validate() throws {
        if call != nil, agent != nil { throw ValidationError("give --call or --agent, not both") }
        if let since, Self.time(since, endOfDay: false) == nil {
            throw ValidationError("--since must be YYYY-MM-DD or an RFC 3339 time (got '\(since)')")
        }
        if let until, Self.time(until, endOfDay: true) == nil {
            throw ValidationError("--until must be YYYY-MM-DD or an RFC 3339 time (got '\(until)')")
        }
    }

    func run() async throws {
        let location = try orExit { () throws -> String in
            if let store { return store }
            guard let configured = try ServerConfig.load(file: config).history.store else {
                throw HistoryError("history is off in the config (history.store: null): give --store")
            }
            return configured
        }
        var history = HistoryConfig()
        history.store = location
        let opened = try orExit { try history.openStore(readOnly: true) }
        guard let store = opened else { throw ExitCode(2) }
        defer { Task { await store.close() } }
        let version = try await orExit { try await store.schemaVersion() }
        try await orExit { () async throws in
            if version == 0 { throw HistoryError("\(store.location) holds no history yet") }
            // A newer release's schema: migrate refuses it, saying what to do, and changes nothing.
            if version > HistorySchema.latestVersion { try await store.migrate() }
        }
        let since = self.since.flatMap { Self.time($0, endOfDay: false) }
        let until = self.until.flatMap { Self.time($0, endOfDay: true) }
        let text: String = try await orExit {
            if let call {
                return ReportRenderer.render(try await HistoryReports.call(call, in: store), as: format)
            } else if let agent {
                return ReportRenderer.render(
                    try await HistoryReports.agent(agent, since: since, until: until, in: store), as: format)
            } else {
                return ReportRenderer.render(
                    try await HistoryReports.period(by, since: since, until: until, in: store), as: format)
            }
        }
        if let output {
            try orExit("--output") { try Data(text.utf8).write(to: URL(fileURLWithPath: output)) }
        } else {
            // As rendered (CSV lines end in CRLF), with a final newline if the format has none.
            FileHandle.standardOutput.write(Data((text.utf8.last == 0x0A ? text : text + "\n").utf8))
        }
    }

    /// A date (00:00 UTC, or the next day's for an end) or an RFC 3339 time, as stored times are written.
    static func time(_ text: String, endOfDay: Bool) -> String? {
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = iso.date(from: text) { return HistoryClock.string(from: d) }
        iso.formatOptions = [.withInternetDateTime]
        if let d = iso.date(from: text) { return HistoryClock.string(from: d) }
        iso.formatOptions = [.withFullDate]
        iso.timeZone = TimeZone(identifier: "UTC")
        guard text.count == 10, let day = iso.date(from: text) else { return nil }
        return HistoryClock.string(from: endOfDay ? day.addingTimeInterval(86400) : day)
    }
}

extension PeriodReport.Grouping: ExpressibleByArgument {}
extension ReportFormat: ExpressibleByArgument {}
