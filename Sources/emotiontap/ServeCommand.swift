import ArgumentParser
import EmotionCore
import EmotionTapServer
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

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
    @Option(name: .customLong("event-target"), help: "Where events go, HOST:PORT (repeatable; replaces the config's list).")
    var eventTargets: [String] = []
    @Option(help: "JSONL event log path ('none' to disable).")
    var eventLog: String?
    @OptionGroup var modelOption: ModelOption
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        var settings: ServerConfig
        do {
            settings = try loadConfig()
        } catch {
            StandardError.line("emotiontap: \(error)")
            throw ExitCode(2)
        }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "emotiontap")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let model: EmotionModel
        if let path = settings.modelPath, modelOption.model == nil {
            do { model = try EmotionModel.load(URL(fileURLWithPath: path)) } catch {
                StandardError.line("emotiontap: \(error.description)")
                throw ExitCode(2)
            }
        } else {
            model = try modelOption.load()
        }
        if settings.hmacKey == nil { settings.hmacKey = ProcessInfo.processInfo.environment["EMOTIONTAP_HMAC_KEY"] }
        if settings.authToken == nil { settings.authToken = ProcessInfo.processInfo.environment["EMOTIONTAP_TOKEN"] }

        let publisher: EventPublisher
        do {
            publisher = try EventPublisher(targets: try settings.eventTargets.map { try UDPTarget($0) }, hmacKey: settings.hmacKey,
                                           logPath: settings.eventLogPath, logMaxBytes: settings.eventLogMaxBytes,
                                           logKeep: settings.eventLogKeep, logger: logger)
        } catch {
            StandardError.line("emotiontap: \(error)")
            throw ExitCode(2)
        }
        let manager = LegManager(config: settings, model: model, publisher: publisher, logger: logger)
        let api = ControlAPI(manager: manager, registry: registry, authToken: settings.authToken)
        let app = Application(router: api.router(),
                              configuration: .init(address: .hostname(settings.httpHost, port: settings.httpPort), serverName: "emotiontap"),
                              logger: logger)
        logger.info("emotiontap serving", metadata: [
            "http": "\(settings.httpHost):\(settings.httpPort)", "rtp": "\(settings.rtpHost):\(settings.rtpPorts.lowerBound)-\(settings.rtpPorts.upperBound)",
            "events": "\(settings.eventTargets.joined(separator: ","))", "signed": "\(settings.hmacKey != nil)",
        ])
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: LegService(manager: manager, logger: logger)), .init(service: app)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    func loadConfig() throws -> ServerConfig {
        var settings = ServerConfig()
        if let config {
            let text: String
            do { text = try String(contentsOfFile: config, encoding: .utf8) } catch {
                throw ConfigError("\(config): cannot read: \(error.localizedDescription)")
            }
            settings = try ServerConfig.load(yaml: text, source: config)
        }
        if let http {
            let parts = http.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else { throw ConfigError("--http must be HOST:PORT") }
            settings.httpHost = String(parts[0])
            settings.httpPort = port
        }
        if let rtpHost { settings.rtpHost = rtpHost }
        if let rtpPorts {
            guard let r = ServerConfig.parsePortRange(rtpPorts) else { throw ConfigError("--rtp-ports must be LOW-HIGH within 1024-65535") }
            settings.rtpPorts = r
        }
        if !eventTargets.isEmpty { settings.eventTargets = eventTargets }
        if let eventLog { settings.eventLogPath = eventLog == "none" ? nil : eventLog }
        try settings.validate(source: config ?? "command line")
        return settings
    }
}
