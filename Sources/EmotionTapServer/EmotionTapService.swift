import EmotionCore
import EmotionHistory
import EmotionSIP
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import Metrics
import NIOCore
import Prometheus

/// Why the service could not be assembled (an event log that cannot be opened, a model file that
/// does not load): one sentence, for the operator.
public struct ServiceError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The live service, assembled from its configuration: the event publisher, the leg manager with
/// its RTP workers, the control API, and the leg service that declares static legs, sends
/// heartbeats and ends every leg on shutdown. `emotiontap serve` runs it; tests build it in-process.
public struct EmotionTapService: Sendable {
    public let config: ServerConfig
    public let manager: LegManager
    public let publisher: EventPublisher
    public let registry: PrometheusCollectorRegistry
    public let logger: Logger
    /// The SIPREC recording server, when `sip.listen` is set.
    public let recordings: RecordingSessions?
    let sipAgent: SIPUserAgent?
    /// The call history's store and the task that fills it from the event log, when `history.store` is set.
    public let history: (any HistoryStore)?
    let historyIngestor: HistoryIngestor?
    /// POSTs `escalate` and `leg.end` (or what `webhooks:` names) to the configured URLs.
    let webhooks: WebhookSender?
    /// Asterisk AudioSocket, when `streams.audiosocket` is set; and the WebSocket stream protocols.
    public let audioSocket: AudioSocketServer?
    let webSocketStreams: WebSocketStreams?

    /// `registry` receives this service's metrics (a registry per service, so several can live in
    /// one process, as in tests).
    public init(
        config: ServerConfig, model: EmotionModel, logger: Logger,
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) throws(ServiceError) {
        if config.sip.listen != nil,
            !SIPConfig.isAdvertisable(config.sip.advertisedMediaAddress(rtpHost: config.rtpHost))
        {
            throw ServiceError(
                "sip: rtp.host \(config.rtpHost) cannot go into an SDP answer (an SRC cannot send to it): "
                    + "set sip.media_address to the address SRCs reach this host on")
        }
        var config = config
        do { config.policy = try config.resolvedPolicy(model: model) } catch { throw ServiceError("\(error)") }
        self.config = config
        self.registry = registry
        self.logger = logger
        let metrics = PrometheusMetricsFactory(registry: registry)
        // Everything that can fail comes before the leg manager, whose worker threads start at once.
        history = try config.history.openStore(logger: logger)
        let sipURLs: (String, String?)?
        do {
            sipURLs = try config.sip.listen.map { listen throws(ConfigError) in
                (
                    try SIPConfig.url(listen, scheme: "sip"),
                    try config.sip.tlsListen.map { l throws(ConfigError) in try SIPConfig.url(l, scheme: "sips") }
                )
            }
        } catch {
            throw ServiceError("sip.listen: \(error)")
        }
        do {
            publisher = try EventPublisher(
                targets: try config.eventTargets.map { t throws(ConfigError) in try ServerConfig.eventTarget(t) },
                hmacKey: config.hmacKey, logPath: config.eventLogPath, logMaxBytes: config.eventLogMaxBytes,
                logKeep: config.eventLogKeep, logger: logger, metrics: metrics)
        } catch {
            throw ServiceError("\(error)")
        }
        manager = LegManager(config: config, model: model, publisher: publisher, logger: logger, metrics: metrics)
        webhooks =
            config.webhooks.isEmpty
            ? nil : WebhookSender(hooks: config.webhooks, hmacKey: config.hmacKey, logger: logger, metrics: metrics)
        if let history, let logPath = config.eventLogPath {
            var options = HistoryIngestor.Options(
                instance: config.history.resolvedInstance, logPath: logPath, logKeep: config.eventLogKeep,
                retentionDays: config.history.retentionDays)
            options.pollInterval = .milliseconds(200)
            options.timelineRetentionDays = config.history.timelineRetentionDays
            historyIngestor = HistoryIngestor(store: history, options: options, logger: logger, metrics: metrics)
        } else {
            historyIngestor = nil
        }
        let legManager = manager
        audioSocket = try config.streams.audiosocketListen.map { listen throws(ServiceError) in
            try AudioSocketServer(
                manager: legManager, listen: listen, role: config.streams.audiosocketRole, logger: logger,
                metrics: metrics)
        }
        webSocketStreams =
            config.streams.webSocket
            ? WebSocketStreams(
                manager: manager, authToken: config.authToken, audiohookKeys: config.streams.audiohookKeys,
                logger: logger, metrics: metrics) : nil
        if let (url, tls) = sipURLs {
            let sessions = RecordingSessions(manager: manager, config: config.sip, logger: logger, metrics: metrics)
            var options = SIPUserAgent.Options(
                url: url, tlsURL: tls, certificateDirectory: config.sip.tlsCertificateDirectory)
            options.sessionExpires = UInt32(config.sip.sessionExpires)
            options.minSessionExpires = UInt32(config.sip.minSessionExpires)
            if config.sip.minSessionExpires < 90 {
                logger.warning(
                    "sip.min_session_expires is below RFC 4028's 90 s floor: for tests only",
                    metadata: ["min_session_expires": "\(config.sip.minSessionExpires)"])
            }
            let agent = SIPUserAgent(options: options, delegate: sessions, logger: logger)
            sessions.agent = agent
            recordings = sessions
            sipAgent = agent
        } else {
            recordings = nil
            sipAgent = nil
        }
    }

    /// Creates or upgrades the history store's schema; a store that is broken or from a newer release
    /// is refused here, before the service starts, with what to do.
    public func prepare() async throws(ServiceError) {
        if let audioSocket {
            // Bound before the service runs: a port in use fails the start, and the API knows the port.
            do { _ = try await audioSocket.bind() } catch {
                throw ServiceError(
                    "streams.audiosocket: cannot listen on \(audioSocket.host):\(audioSocket.requestedPort): \(error)")
            }
        }
        guard let history else { return }
        do { try await history.migrate() } catch { throw ServiceError("history store: \(error)") }
    }

    /// The HTTP application with the leg service attached; `runService()` runs both until SIGTERM or
    /// SIGINT, then ends the legs (each with `leg.end`, reason `shutdown`). `onServerRunning` gets the
    /// HTTP port once it listens (the configured one, or the one the system picked for port 0).
    public func buildApplication(
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        // A PostgreSQL store is shared with other instances: calls are answered across them.
        let shared: SharedCallView? =
            if let history, case .postgres? = config.history.store.flatMap({ try? HistoryConfig.location($0) }) {
                SharedCallView(store: history, instance: config.history.resolvedInstance)
            } else {
                nil
            }
        let api = ControlAPI(
            manager: manager, recordings: recordings, registry: registry, authToken: config.authToken,
            sharedHistory: shared, streams: webSocketStreams, audioSocket: audioSocket)
        logger.info(
            "emotiontap serving",
            metadata: [
                "http": "\(config.httpHost):\(config.httpPort)",
                "rtp": "\(config.rtpHost):\(config.rtpPorts.lowerBound)-\(config.rtpPorts.upperBound)",
                "events": "\(config.eventTargets.joined(separator: ","))", "signed": "\(config.hmacKey != nil)",
            ])
        let streams = webSocketStreams
        return Application(
            router: api.router(),
            server: .http1WebSocketUpgrade(
                webSocketRouter: streams?.router() ?? Router(context: BasicWebSocketRequestContext.self),
                configuration: .init(
                    ws: .init(
                        maxFrameSize: WebSocketStreams.maxMessage,
                        // A client that vanished without closing stops answering pings: its legs end.
                        autoPing: .enabled(timePeriod: .seconds(10))))),
            configuration: .init(address: .hostname(config.httpHost, port: config.httpPort), serverName: "emotiontap"),
            services: [LegService(manager: manager, logger: logger)]
                + (sipAgent.map { [SIPService(agent: $0, logger: logger)] } ?? [])
                + (historyIngestor.map { [HistoryService(ingestor: $0, logger: logger)] } ?? [])
                + (webhooks.map { [WebhookService(sender: $0, publisher: publisher)] } ?? [])
                + (audioSocket.map { [$0] } ?? []),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                streams?.httpPort.store(port, ordering: .relaxed)
                await onServerRunning(port)
            },
            logger: logger)
    }
}

extension ServerConfig {
    /// Fills what the environment may supply and the file did not: EMOTIONTAP_HMAC_KEY, EMOTIONTAP_TOKEN.
    public func withEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> ServerConfig {
        var c = self
        if c.hmacKey == nil { c.hmacKey = environment["EMOTIONTAP_HMAC_KEY"] }
        if c.authToken == nil { c.authToken = environment["EMOTIONTAP_TOKEN"] }
        return c
    }

    /// The model the config names, or the built-in one.
    public func loadModel() throws(ServiceError) -> EmotionModel {
        do {
            if let modelPath { return try EmotionModel.load(URL(fileURLWithPath: modelPath)) }
            return try EmotionModel.builtIn()
        } catch {
            throw ServiceError("\(error)")
        }
    }

    /// Reads a YAML file (nil: the built-in defaults).
    public static func load(file path: String?) throws(ConfigError) -> ServerConfig {
        guard let path else { return ServerConfig() }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError("\(path): cannot read: \(error.localizedDescription)")
        }
        return try load(yaml: text, source: path)
    }
}
