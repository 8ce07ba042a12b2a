import ArgumentParser
import EmotionTapServer
import EmotionTraffic
import Foundation
import Glibc

struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Live view of the service's legs in a terminal: mood, upset, escalation and RTP counters.",
        discussion: """
            Polls the control API's GET /v1/legs every --interval seconds. On a terminal the screen is redrawn \
            in place and upset legs are shown in red; piped, each refresh is printed below the last. \
            With --once one snapshot is printed and the command exits (status 2 when the API cannot be read).
            """
    )

    @Option(help: "Control API base URL.")
    var api: String = "http://\(ServerConfig().httpHost):\(ServerConfig().httpPort)"
    @Option(help: "Bearer token for the control API (also EMOTIONTAP_TOKEN).")
    var token: String?
    @Option(help: "Seconds between refreshes.")
    var interval: Double = 1
    @Flag(help: "Print one snapshot and exit (for scripts).")
    var once = false
    @Option(help: "Show only the legs of this call id.")
    var call: String?
    @Option(help: "Row order: upset (highest first), call (call id, then role) or loss (highest loss first).")
    var sort: TopSort = .upset

    func validate() throws {
        guard interval >= 0.1, interval <= 3600 else { throw ValidationError("--interval must be 0.1...3600 seconds") }
        do { _ = try ControlClient(baseURL: api) } catch { throw ValidationError("--api: \(error)") }
    }

    func run() async throws {
        let environmentToken = ProcessInfo.processInfo.environment["EMOTIONTAP_TOKEN"]
        let bearer = [token, environmentToken].compactMap { $0 }.first { !$0.isEmpty }
        let client = try orExit { try ControlClient(baseURL: api, token: bearer) }
        let screen = TopScreen(live: !once && isatty(STDOUT_FILENO) == 1)

        if once {
            switch await fetch(client, hasToken: bearer != nil) {
            case .legs(let legs): screen.draw(table(legs).lines())
            case .fatal(let message), .unavailable(let message):
                StandardError.line("emotiontap: " + message)
                throw ExitCode(2)
            }
            return
        }
        screen.enter()
        defer { screen.leave() }
        while true {
            switch await fetch(client, hasToken: bearer != nil) {
            case .legs(let legs):
                screen.draw(table(legs).lines(maxLines: screen.height()))
            case .fatal(let message):
                StandardError.line("emotiontap: " + message)
                throw ExitCode(2)
            case .unavailable(let message):
                // The service may be restarting: say so and try again next interval.
                screen.draw([TopTable.clock(Date()) + "  waiting for the service at \(api)", "  " + message])
            }
            try await Task.sleep(for: .seconds(interval))
        }
    }

    func table(_ legs: [TopLeg]) -> TopTable {
        let shown = call.map { id in legs.filter { $0.callID == id } } ?? legs
        return TopTable(legs: sort.sorted(shown), time: Date(), call: call, color: isatty(STDOUT_FILENO) == 1)
    }

    // MARK: The API

    enum Fetched {
        case legs([TopLeg])
        /// Retrying cannot help (the token): the command ends.
        case fatal(String)
        /// Unreachable or not answering as it should: in the loop, tried again.
        case unavailable(String)
    }

    func fetch(_ client: ControlClient, hasToken: Bool) async -> Fetched {
        let answer: ControlClient.Answer
        do { answer = try await client.request("GET", "/v1/legs") } catch {
            return .unavailable(error.description)
        }
        switch answer.status {
        case 200:
            do { return .legs(try TopLeg.decodeList(answer.body)) } catch {
                return .unavailable("GET /v1/legs at \(api) answered a body that is not a list of legs")
            }
        case 401 where hasToken:
            return .fatal("the API refused the token (check --token or EMOTIONTAP_TOKEN)")
        case 401:
            return .fatal("the API needs a token (--token or EMOTIONTAP_TOKEN)")
        default:
            let reason = answer.errorMessage.isEmpty ? "" : ": " + answer.errorMessage
            return .unavailable("GET /v1/legs at \(api) answered \(answer.status)\(reason)")
        }
    }
}

// MARK: The terminal

/// Where the refreshes go. Live (stdout a terminal, not --once): each one redraws the screen in place,
/// with the cursor hidden and line wrapping off until Ctrl-C or SIGTERM, which restore both. Otherwise
/// plain lines, no escape codes.
struct TopScreen {
    let live: Bool

    func enter() {
        if live {
            // Hidden cursor, no auto-wrap (a narrow terminal cuts rows instead of scrolling), cleared screen.
            write("\u{1b}[?25l\u{1b}[?7l\u{1b}[2J")
            signal(SIGINT, restoreAndExit)
            signal(SIGTERM, restoreAndExit)
        } else {
            signal(SIGINT, exitQuietly)
            signal(SIGTERM, exitQuietly)
        }
    }

    func leave() {
        if live { write("\u{1b}[?25h\u{1b}[?7h") }
    }

    func draw(_ lines: [String]) {
        if live {
            // Home, each line over the old one and cleared to its end, then the rest of the screen cleared:
            // no blank flash between refreshes.
            write("\u{1b}[H" + lines.map { $0 + "\u{1b}[K\n" }.joined() + "\u{1b}[J")
        } else {
            write(lines.joined(separator: "\n") + "\n")
        }
    }

    /// Lines a refresh may take: the terminal's rows but one (a newline on the last row would scroll the
    /// header away); nil when not live or the terminal does not say its size.
    func height() -> Int? {
        guard live else { return nil }
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 1 else { return nil }
        return Int(size.ws_row) - 1
    }

    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

// Signal handlers may only make async-signal-safe calls: write(2) of a static string and _exit(2).
private func restoreAndExit(_: Int32) {
    let restore: StaticString = "\u{1b}[?25h\u{1b}[?7h\n"
    _ = Glibc.write(STDOUT_FILENO, restore.utf8Start, restore.utf8CodeUnitCount)
    _exit(0)
}

private func exitQuietly(_: Int32) {
    _exit(0)
}
