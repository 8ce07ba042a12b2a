import ArgumentParser
import EmotionCore
import EmotionTapServer
import Foundation
import Hummingbird
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the live service: RTP legs in, emotion events out, a control API for the switch."
    )

    @Option(help: "YAML config file (default: built-in defaults, the same as config/emotiontap.yaml).")
    var config: String?
    @Option(help: "Control API address HOST:PORT.")
    var http: String?
    @Option(help: "Local address the RTP ports bind to.")
    var rtpHost: String?
    @Option(help: "RTP port range LOW-HIGH.")
    var rtpPorts: String?
    @Option(
        name: .customLong("event-target"), help: "Where events go, HOST:PORT (repeatable; replaces the config's list).")
    var eventTargets: [String] = []
    @Option(help: "JSONL event log path ('none' to disable; the history store, filled from it, is then off too).")
    var eventLog: String?
    @Option(help: "Answer SIPREC recording sessions on HOST:PORT (UDP and TCP), e.g. 127.0.0.1:5070.")
    var sip: String?
    @Option(help: "Accept Asterisk AudioSocket connections on HOST:PORT (TCP), e.g. 127.0.0.1:9092.")
    var audiosocket: String?
    @Option(help: "Call history store: an SQLite path, a postgres:// URL, or 'none' (default: the config's).")
    var history: String?
    @OptionGroup var modelOption: ModelOption
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        var settings = try orExit { try loadConfig() }
        if let model = modelOption.model { settings.modelPath = model }
        let model = try orExit { try settings.loadModel() }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let service = try orExit {
            try EmotionTapService(config: settings, model: model, logger: Logger(label: "emotiontap"))
        }
        try await orExit { try await service.prepare() }
        try await service.buildApplication().runService()
    }

    /// The config file, then the command line over it, then the environment for what is still unset.
    func loadConfig() throws -> ServerConfig {
        var settings = try ServerConfig.load(file: config)
        if let http {
            let parts = http.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else {
                throw ConfigError("--http must be HOST:PORT")
            }
            settings.httpHost = String(parts[0])
            settings.httpPort = port
        }
        if let rtpHost { settings.rtpHost = rtpHost }
        if let rtpPorts {
            guard let r = ServerConfig.parsePortRange(rtpPorts) else {
                throw ConfigError("--rtp-ports must be LOW-HIGH within 1024-65535 holding an even port")
            }
            settings.rtpPorts = r
        }
        if !eventTargets.isEmpty { settings.eventTargets = eventTargets }
        if let eventLog { settings.eventLogPath = eventLog == "none" ? nil : eventLog }
        // The history is filled from the event log: without one (and no --history asking for it) it is off.
        if eventLog == "none", history == nil { settings.history.store = nil }
        if let history { settings.history.store = history == "none" ? nil : history }
        if let sip {
            do { _ = try SIPConfig.url(sip, scheme: "sip") } catch { throw ConfigError("--sip \(error)") }
            settings.sip.listen = sip
        }
        if let audiosocket {
            do { try StreamsConfig.hostPort(audiosocket) } catch { throw ConfigError("--audiosocket \(error)") }
            settings.streams.audiosocketListen = audiosocket
        }
        try settings.validate(source: config ?? "command line")
        return settings.withEnvironment()
    }
}
