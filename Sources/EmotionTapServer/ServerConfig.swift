import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionUDP
import Foundation
import Yams

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Everything `emotiontap serve` needs; every field has a default that works on loopback.
public struct ServerConfig: Sendable, Equatable {
    public struct StaticLeg: Sendable, Equatable {
        public var port: Int
        public var callID: String
        public var role: String
        public var codec: VoiceCodec?
        public var agentID: String?
    }

    public var httpHost = "127.0.0.1"
    public var httpPort = 8088
    /// A comment line on `GET /v1/events/stream` this often while nothing else is sent.
    public var streamKeepAliveSeconds = 15.0
    /// Bearer token the control API requires; nil = none (the default config listens on loopback only).
    public var authToken: String?
    public var rtpHost = "127.0.0.1"
    public var rtpPorts = 40000...43999
    public var legTimeoutSeconds = 30.0
    public var maxLegs = 2000
    /// Admission control: while the busiest RTP worker spends this share of a second working, new legs
    /// are refused with 503 and `/healthz` says degraded (0 refuses everything: for tests). nil: off,
    /// the default until the capacity work sets a measured mark (0.9 is a sensible one).
    public var maxWorkerBusy: Double?
    /// Admission control on the backlog: while a worker reads its oldest packet this many ms after it
    /// arrived, new legs are refused with 503 and `/healthz` says degraded. nil: off.
    public var maxBacklogMilliseconds: Int?
    /// Audio read this long after it arrived (a worker that fell behind) is dropped unanalysed, counted
    /// as `queue_overflow` and as skipped windows, so the worker catches up instead of falling further
    /// behind; it also bounds each leg's queue (and memory) at any offered load.
    public var maxDelayMilliseconds = 2000
    /// How often each leg's socket is read in full (a leg whose window is about to end is read every
    /// 10 ms meanwhile): longer reads more packets per visit for less CPU, and delays the events that
    /// wait on no window (`leg.start` after a leg's first second) by up to this much. 200 ms took about
    /// 10 % less CPU than 100 ms at 2,000 G.711 legs, latency unchanged (docs/CAPACITY.md).
    public var readIntervalMilliseconds = 200
    public var workers = 0
    /// The RTP worker threads' nice value (nil: the process's own). Negative puts them before the
    /// process's other threads and other processes of its scheduling group (a systemd unit's cgroup,
    /// or the session's autogroup), as rtpengine's `priority` option does for its threads; it needs
    /// CAP_SYS_NICE or RLIMIT_NICE (without either the service says so at start and runs them as they are).
    public var workerNice: Int?
    public var telephoneEventPayloadType: UInt8 = 101
    /// Playout delay that puts packets overtaken in the network back in order (oRTP's jitter buffer);
    /// 0 = none (lowest latency: the packets of one read are put in order; one that comes after its
    /// successor was read is concealed and counted late).
    public var jitterBufferMilliseconds = 0
    /// RTP senders accepted (IPv4 CIDRs); empty = any.
    public var rtpAllow: [IPv4Network] = []
    /// A leg locks to its first sender; packets from anywhere else are dropped and counted.
    public var lockSource = true
    public var eventTargets: [String] = ["127.0.0.1:9099"]
    public var hmacKey: String?
    public var eventLogPath: String? = "emotiontap-events.jsonl"
    public var eventLogMaxBytes = 50_000_000
    public var eventLogKeep = 5
    public var heartbeatSeconds = 5.0
    public var modelPath: String?
    /// The escalation rule (and, once resolved against the model, the state thresholds).
    public var policy = LegPolicy()
    /// State thresholds and smoothing set in the config; nil keeps the model's tuned value.
    public var decisionOverride = DecisionOverride()
    public var staticLegs: [StaticLeg] = []
    public var sip = SIPConfig()
    public var history = HistoryConfig()
    public var webhooks: [WebhookConfig] = []
    public var streams = StreamsConfig()

    public init() {}

    public var workerCount: Int { workers > 0 ? workers : max(1, ProcessInfo.processInfo.activeProcessorCount) }

    // MARK: YAML

    /// Reads a YAML config. An unknown key or a bad value names the key and its line; nothing is half-applied.
    public static func load(yaml text: String, source: String) throws(ConfigError) -> ServerConfig {
        do { return try parse(yaml: text, source: source) } catch let error as ConfigError { throw error } catch {
            throw ConfigError("\(source): \(error)")
        }
    }

    static func parse(yaml text: String, source: String) throws -> ServerConfig {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw ConfigError("\(source): not valid YAML: \(error)")
        }
        var config = ServerConfig()
        guard let root = node else { return config }
        let r = Reader(source: source)
        try r.object(
            root, path: "",
            keys: [
                "http", "auth_token", "rtp", "events", "model", "policy", "static_legs", "sip", "history", "webhooks",
                "streams",
            ]
        ) {
            key, value in
            switch key {
            case "http":
                try r.object(value, path: "http", keys: ["host", "port", "stream_keepalive_s"]) { k, v in
                    switch k {
                    case "host": config.httpHost = try r.string(v, "http.host")
                    case "port": config.httpPort = try r.int(v, "http.port", 1...65535)
                    case "stream_keepalive_s":
                        config.streamKeepAliveSeconds = try r.double(v, "http.stream_keepalive_s", 0.5...300)
                    default: throw r.unhandled(k, "http")
                    }
                }
            case "auth_token": config.authToken = try r.optionalString(value, "auth_token")
            case "model": config.modelPath = try r.optionalString(value, "model")
            case "rtp":
                try r.object(
                    value, path: "rtp",
                    keys: [
                        "host", "ports", "leg_timeout_s", "max_legs", "workers", "telephone_event_payload_type",
                        "allow", "lock_source", "jitter_buffer_ms", "max_worker_busy", "max_backlog_ms", "max_delay_ms",
                        "read_interval_ms", "worker_nice",
                    ]
                ) { k, v in
                    switch k {
                    case "allow":
                        config.rtpAllow = try r.stringList(v, "rtp.allow").map { text in
                            guard let n = IPv4Network(text) else {
                                throw r.fail(v, "rtp.allow", "'\(text)' is not an IPv4 CIDR like 10.0.0.0/8")
                            }
                            return n
                        }
                    case "lock_source":
                        guard let b = v.bool else { throw r.fail(v, "rtp.lock_source", "must be true or false") }
                        config.lockSource = b
                    case "host": config.rtpHost = try r.string(v, "rtp.host")
                    case "ports": config.rtpPorts = try r.portRange(v, "rtp.ports")
                    case "leg_timeout_s": config.legTimeoutSeconds = try r.double(v, "rtp.leg_timeout_s", 1...86400)
                    case "max_legs": config.maxLegs = try r.int(v, "rtp.max_legs", 1...100_000)
                    case "max_worker_busy":
                        config.maxWorkerBusy = try r.optionalDouble(v, "rtp.max_worker_busy", 0...1)
                    case "max_backlog_ms":
                        config.maxBacklogMilliseconds = try r.optionalInt(v, "rtp.max_backlog_ms", 10...60000)
                    case "max_delay_ms": config.maxDelayMilliseconds = try r.int(v, "rtp.max_delay_ms", 100...60000)
                    case "read_interval_ms":
                        config.readIntervalMilliseconds = try r.int(v, "rtp.read_interval_ms", 10...500)
                    case "workers": config.workers = try r.int(v, "rtp.workers", 0...256)
                    case "worker_nice": config.workerNice = try r.optionalInt(v, "rtp.worker_nice", -20...19)
                    case "jitter_buffer_ms":
                        config.jitterBufferMilliseconds = try r.int(v, "rtp.jitter_buffer_ms", 0...1000)
                    case "telephone_event_payload_type":
                        config.telephoneEventPayloadType = UInt8(
                            try r.int(v, "rtp.telephone_event_payload_type", 96...127))
                    default: throw r.unhandled(k, "rtp")
                    }
                }
                // A full pass reads audio up to a read interval old: a mark below that sheds (or refuses) in
                // normal running.
                if config.maxDelayMilliseconds <= config.readIntervalMilliseconds {
                    throw r.fail(value, "rtp.max_delay_ms", "must exceed rtp.read_interval_ms")
                }
                if let backlog = config.maxBacklogMilliseconds, backlog <= config.readIntervalMilliseconds {
                    throw r.fail(value, "rtp.max_backlog_ms", "must exceed rtp.read_interval_ms")
                }
            case "events":
                try r.object(
                    value, path: "events",
                    keys: ["targets", "hmac_key", "log", "log_max_bytes", "log_keep", "heartbeat_s"]
                ) { k, v in
                    switch k {
                    case "targets":
                        config.eventTargets = try r.stringList(v, "events.targets")
                        for t in config.eventTargets {
                            _ = try r.wrap(v, "events.targets") { () throws(ConfigError) in try Self.eventTarget(t) }
                        }
                    case "hmac_key": config.hmacKey = try r.optionalString(v, "events.hmac_key")
                    case "log": config.eventLogPath = try r.optionalString(v, "events.log")
                    case "log_max_bytes": config.eventLogMaxBytes = try r.int(v, "events.log_max_bytes", 4096...Int.max)
                    case "log_keep": config.eventLogKeep = try r.int(v, "events.log_keep", 1...100)
                    case "heartbeat_s": config.heartbeatSeconds = try r.double(v, "events.heartbeat_s", 0.5...3600)
                    default: throw r.unhandled(k, "events")
                    }
                }
            case "policy":
                try r.object(
                    value, path: "policy",
                    keys: [
                        "smoothing", "enter_upset", "exit_upset", "enter_windows", "escalate_upset", "escalate_upset_s",
                        "escalate_within_s",
                        "escalate_roles",
                    ]
                ) { k, v in
                    switch k {
                    case "smoothing":
                        config.decisionOverride.smoothing = try r.optionalDouble(v, "policy.smoothing", 0.01...1)
                    case "enter_upset":
                        config.decisionOverride.enterUpset = try r.optionalDouble(v, "policy.enter_upset", 0...1)
                    case "exit_upset":
                        config.decisionOverride.exitUpset = try r.optionalDouble(v, "policy.exit_upset", 0...1)
                    case "enter_windows":
                        config.decisionOverride.enterWindows = try r.optionalDouble(v, "policy.enter_windows", 1...30)
                            .map { Int($0) }
                    case "escalate_upset":
                        config.decisionOverride.escalateUpset = try r.optionalDouble(v, "policy.escalate_upset", 0...1)
                    case "escalate_upset_s":
                        // null: the model's tuned value (20 s for a model that carries none).
                        config.decisionOverride.escalateUpsetSeconds = try r.optionalDouble(
                            v, "policy.escalate_upset_s", 1...3600)
                    case "escalate_within_s":
                        // null: the model's tuned value (60 s for a model that carries none).
                        config.decisionOverride.escalateWithinSeconds = try r.optionalDouble(
                            v, "policy.escalate_within_s", 1...3600)
                    case "escalate_roles": config.policy.escalateRoles = try r.stringList(v, "policy.escalate_roles")
                    default: throw r.unhandled(k, "policy")
                    }
                }
            case "sip":
                try r.object(
                    value, path: "sip",
                    keys: [
                        "listen", "tls_listen", "tls_cert_dir", "call_id", "agent_aors", "max_streams", "media_address",
                        "session_expires", "min_session_expires",
                    ]
                ) { k, v in
                    switch k {
                    case "listen":
                        config.sip.listen = try r.optionalString(v, "sip.listen")
                        if let l = config.sip.listen {
                            _ = try r.wrap(v, "sip.listen") { () throws(ConfigError) in
                                try SIPConfig.url(l, scheme: "sip")
                            }
                        }
                    case "tls_listen":
                        config.sip.tlsListen = try r.optionalString(v, "sip.tls_listen")
                        if let l = config.sip.tlsListen {
                            _ = try r.wrap(v, "sip.tls_listen") { () throws(ConfigError) in
                                try SIPConfig.url(l, scheme: "sips")
                            }
                        }
                    case "tls_cert_dir":
                        config.sip.tlsCertificateDirectory = try r.optionalString(v, "sip.tls_cert_dir")
                    case "call_id":
                        let text = try r.string(v, "sip.call_id")
                        guard let source = SIPConfig.CallIDSource(rawValue: text) else {
                            throw r.fail(v, "sip.call_id", "must be call_id or session_id")
                        }
                        config.sip.callIDSource = source
                    case "agent_aors": config.sip.agentAORs = try r.stringList(v, "sip.agent_aors")
                    case "max_streams": config.sip.maxStreams = try r.int(v, "sip.max_streams", 1...64)
                    case "media_address":
                        let text = try r.string(v, "sip.media_address")
                        guard SIPConfig.isAdvertisable(text) else {
                            throw r.fail(v, "sip.media_address", "must be a unicast IPv4 address or a host name")
                        }
                        config.sip.mediaAddress = text
                    case "session_expires":
                        config.sip.sessionExpires = try r.int(v, "sip.session_expires", 1...86400)
                    case "min_session_expires":
                        config.sip.minSessionExpires = try r.int(v, "sip.min_session_expires", 1...86400)
                    default: throw r.unhandled(k, "sip")
                    }
                }
                if config.sip.minSessionExpires > config.sip.sessionExpires {
                    throw r.fail(value, "sip.min_session_expires", "must not exceed sip.session_expires")
                }
                if config.sip.tlsListen != nil, config.sip.tlsCertificateDirectory == nil {
                    throw r.fail(value, "sip.tls_listen", "needs sip.tls_cert_dir (agent.pem and cafile.pem)")
                }
            case "streams":
                try r.object(
                    value, path: "streams",
                    keys: ["audiosocket", "audiosocket_role", "websocket", "audiohook_keys", "max_queue_ms"]
                ) { k, v in
                    switch k {
                    case "audiosocket":
                        config.streams.audiosocketListen = try r.optionalString(v, "streams.audiosocket")
                        if let l = config.streams.audiosocketListen {
                            _ = try r.wrap(v, "streams.audiosocket") { () throws(ConfigError) in
                                try StreamsConfig.hostPort(l)
                            }
                        }
                    case "audiosocket_role":
                        let role = try r.string(v, "streams.audiosocket_role")
                        guard LegRequest.validIdentifier(role) else {
                            throw r.fail(
                                v, "streams.audiosocket_role", "must be 1-128 characters of letters, digits and ._:@+-")
                        }
                        config.streams.audiosocketRole = role
                    case "websocket":
                        guard let b = v.bool else { throw r.fail(v, "streams.websocket", "must be true or false") }
                        config.streams.webSocket = b
                    case "max_queue_ms":
                        config.streams.maxQueueMilliseconds = try r.int(v, "streams.max_queue_ms", 200...60_000)
                    case "audiohook_keys":
                        guard case .sequence(let seq) = v else {
                            throw r.fail(v, "streams.audiohook_keys", "must be a list of {api_key, client_secret}")
                        }
                        for (i, item) in seq.enumerated() {
                            let path = "streams.audiohook_keys[\(i)]"
                            var key = ""
                            var secret: [UInt8] = []
                            try r.object(item, path: path, keys: ["api_key", "client_secret"]) { k, v in
                                switch k {
                                case "api_key": key = try r.string(v, "\(path).api_key")
                                case "client_secret":
                                    let text = try r.string(v, "\(path).client_secret")
                                    guard let data = Data(base64Encoded: text) else {
                                        throw r.fail(v, "\(path).client_secret", "must be base64 (as Genesys shows it)")
                                    }
                                    secret = Array(data)
                                default: throw r.unhandled(k, path)
                                }
                            }
                            guard !key.isEmpty else { throw r.fail(item, "\(path).api_key", "is required") }
                            config.streams.audiohookKeys[key] = secret
                        }
                    default: throw r.unhandled(k, "streams")
                    }
                }
            case "webhooks":
                guard case .sequence(let seq) = value else { throw r.fail(value, "webhooks", "must be a list") }
                for (i, item) in seq.enumerated() {
                    let path = "webhooks[\(i)]"
                    var hook = WebhookConfig(url: "")
                    try r.object(item, path: path, keys: ["url", "events", "timeout_s", "max_attempts"]) { k, v in
                        switch k {
                        case "url":
                            let url = try r.string(v, "\(path).url")
                            guard let u = URL(string: url), ["http", "https"].contains(u.scheme?.lowercased() ?? ""),
                                u.host?.isEmpty == false
                            else { throw r.fail(v, "\(path).url", "must be an http:// or https:// URL") }
                            hook.url = url
                        case "events":
                            hook.events = try r.stringList(v, "\(path).events")
                            if let bad = hook.events.first(where: { !WebhookConfig.eventTypes.contains($0) }) {
                                throw r.fail(
                                    v, "\(path).events",
                                    "'\(bad)' is not an event type (\(WebhookConfig.eventTypes.joined(separator: ", ")))"
                                )
                            }
                        case "timeout_s": hook.timeoutSeconds = try r.double(v, "\(path).timeout_s", 0.1...120)
                        case "max_attempts": hook.maxAttempts = try r.int(v, "\(path).max_attempts", 1...100)
                        default: throw r.unhandled(k, path)
                        }
                    }
                    guard !hook.url.isEmpty else { throw r.fail(item, path, "needs url") }
                    config.webhooks.append(hook)
                }
            case "history":
                try r.object(
                    value, path: "history", keys: ["store", "retention_days", "timeline_retention_days", "instance"]
                ) { k, v in
                    switch k {
                    case "store":
                        config.history.store = try r.optionalString(v, "history.store")
                        if let s = config.history.store {
                            _ = try r.wrap(v, "history.store") { () throws(ConfigError) in
                                try HistoryConfig.location(s)
                            }
                        }
                    case "retention_days":
                        config.history.retentionDays =
                            r.isNull(v) ? nil : try r.int(v, "history.retention_days", 1...36500)
                    case "timeline_retention_days":
                        config.history.timelineRetentionDays =
                            r.isNull(v) ? nil : try r.int(v, "history.timeline_retention_days", 1...36500)
                    case "instance":
                        let text = try r.optionalString(v, "history.instance")
                        if let text, !LegRequest.validIdentifier(text) {
                            throw r.fail(
                                v, "history.instance", "must be 1-128 characters of letters, digits and ._:@+-")
                        }
                        config.history.instance = text
                    default: throw r.unhandled(k, "history")
                    }
                }
            case "static_legs":
                guard case .sequence(let seq) = value else { throw r.fail(value, "static_legs", "must be a list") }
                for (i, item) in seq.enumerated() {
                    var leg = StaticLeg(port: 0, callID: "", role: "", codec: nil)
                    let path = "static_legs[\(i)]"
                    try r.object(item, path: path, keys: ["port", "call_id", "role", "codec", "agent_id"]) { k, v in
                        switch k {
                        case "port": leg.port = try r.int(v, "\(path).port", 1...65535)
                        case "call_id": leg.callID = try r.string(v, "\(path).call_id")
                        case "role": leg.role = try r.string(v, "\(path).role")
                        case "agent_id": leg.agentID = try r.optionalString(v, "\(path).agent_id")
                        case "codec":
                            let c = try r.string(v, "\(path).codec")
                            guard let codec = VoiceCodec(rawValue: c) else {
                                throw r.fail(v, "\(path).codec", "must be pcmu, pcma or opus")
                            }
                            leg.codec = codec
                        default: throw r.unhandled(k, path)
                        }
                    }
                    guard leg.port > 0, !leg.callID.isEmpty, !leg.role.isEmpty else {
                        throw r.fail(item, path, "needs port, call_id and role")
                    }
                    config.staticLegs.append(leg)
                }
            default: throw r.unhandled(key, "")
            }
        }
        try config.validate(source: source)
        return config
    }

    public func validate(source: String) throws(ConfigError) {
        if let exit = decisionOverride.exitUpset, let enter = decisionOverride.enterUpset, exit > enter {
            throw ConfigError("\(source): policy.exit_upset (\(exit)) must not exceed policy.enter_upset (\(enter))")
        }
        for leg in staticLegs where !rtpPorts.contains(leg.port) {
            throw ConfigError(
                "\(source): static leg port \(leg.port) is outside rtp.ports "
                    + "\(rtpPorts.lowerBound)-\(rtpPorts.upperBound)"
            )
        }
        if Set(staticLegs.map(\.port)).count != staticLegs.count {
            throw ConfigError("\(source): two static legs share a port")
        }
        for t in eventTargets { _ = try Self.eventTarget(t) }
        if let store = history.store {
            _ = try HistoryConfig.location(store)
            guard eventLogPath != nil else {
                throw ConfigError(
                    "\(source): history.store needs events.log (the store is filled from the event log, so that "
                        + "nothing is lost while it is down); set events.log or history.store: null")
            }
        }
    }

    /// An event target, "host:port" with an IPv4 host.
    public static func eventTarget(_ text: String) throws(ConfigError) -> UDPEndpoint {
        do { return try UDPEndpoint(text) } catch { throw ConfigError("event target \(error.description)") }
    }

    /// Reads typed values out of YAML nodes, with the key path and line in every error.
    struct Reader {
        let source: String

        func fail(_ node: Node, _ path: String, _ message: String) -> ConfigError {
            let line = node.mark.map { " (line \($0.line))" } ?? ""
            return ConfigError("\(source): \(path)\(line): \(message)")
        }

        /// A key in the known list with no case of its own: a programming error, reported, never silently misapplied.
        func unhandled(_ key: String, _ section: String) -> ConfigError {
            ConfigError(
                "\(source): \(section.isEmpty ? key : "\(section).\(key)"): known but not handled "
                    + "(a bug: please report it)"
            )
        }

        func wrap<T>(_ node: Node, _ path: String, _ body: () throws(ConfigError) -> T) throws(ConfigError) -> T {
            do { return try body() } catch { throw fail(node, path, error.description) }
        }

        func object(_ node: Node, path: String, keys: Set<String>, _ each: (String, Node) throws -> Void) throws {
            guard case .mapping(let mapping) = node else {
                throw fail(node, path.isEmpty ? "top level" : path, "must be a mapping")
            }
            for (k, v) in mapping {
                guard let key = k.string else { throw fail(k, path, "keys must be strings") }
                guard keys.contains(key) else {
                    let full = path.isEmpty ? key : "\(path).\(key)"
                    throw fail(k, full, "unknown key (known: \(keys.sorted().joined(separator: ", ")))")
                }
                try each(key, v)
            }
        }

        func string(_ node: Node, _ path: String) throws(ConfigError) -> String {
            guard case .scalar(let s) = node, !s.string.isEmpty else {
                throw fail(node, path, "must be a non-empty string")
            }
            return s.string
        }

        func isNull(_ node: Node) -> Bool {
            if case .scalar(let s) = node, s.string == "null" || s.string == "~" || s.string.isEmpty { return true }
            return false
        }

        func optionalString(_ node: Node, _ path: String) throws(ConfigError) -> String? {
            if case .scalar(let s) = node, s.string == "null" || s.string == "~" || s.string.isEmpty { return nil }
            return try string(node, path)
        }

        func int(_ node: Node, _ path: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int {
            guard let v = node.int else { throw fail(node, path, "must be an integer") }
            guard range.contains(v) else {
                throw fail(node, path, "must be in \(range.lowerBound)...\(range.upperBound) (got \(v))")
            }
            return v
        }

        func double(_ node: Node, _ path: String, _ range: ClosedRange<Double>) throws(ConfigError) -> Double {
            guard let v = node.float ?? node.int.map(Double.init) else { throw fail(node, path, "must be a number") }
            guard range.contains(v) else {
                throw fail(node, path, "must be in \(range.lowerBound)...\(range.upperBound) (got \(v))")
            }
            return v
        }

        func optionalDouble(
            _ node: Node, _ path: String, _ range: ClosedRange<Double>
        ) throws(ConfigError) -> Double? {
            if case .scalar(let s) = node, s.string == "null" || s.string == "~" || s.string.isEmpty { return nil }
            return try double(node, path, range)
        }

        func optionalInt(_ node: Node, _ path: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int? {
            if case .scalar(let s) = node, s.string == "null" || s.string == "~" || s.string.isEmpty { return nil }
            return try int(node, path, range)
        }

        func stringList(_ node: Node, _ path: String) throws(ConfigError) -> [String] {
            guard case .sequence(let seq) = node else { throw fail(node, path, "must be a list") }
            var out: [String] = []
            for item in seq { out.append(try string(item, path)) }
            return out
        }

        func portRange(_ node: Node, _ path: String) throws(ConfigError) -> ClosedRange<Int> {
            let text = try string(node, path)
            guard let r = ServerConfig.parsePortRange(text) else {
                throw fail(node, path, "must be LOW-HIGH within 1024-65535 holding an even port (got '\(text)')")
            }
            return r
        }
    }

    public static func parsePortRange(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        // Legs take the even ports (RTCP's convention): the range must hold one.
        guard parts.count == 2, let lo = parts[0], let hi = parts[1], lo >= 1024, hi <= 65535, lo <= hi,
            lo < hi || lo % 2 == 0
        else {
            return nil
        }
        return lo...hi
    }
}

/// The state thresholds a config sets over the model's own (`policy.smoothing`, `enter_upset`, `exit_upset`).
public struct DecisionOverride: Sendable, Equatable {
    public var smoothing: Double?
    public var enterUpset: Double?
    public var exitUpset: Double?
    public var enterWindows: Int?
    public var escalateUpset: Double?
    public var escalateUpsetSeconds: Double?
    public var escalateWithinSeconds: Double?
    public init() {}
}

extension ServerConfig {
    /// The policy legs run with: the model's tuned thresholds, then whatever the config overrides.
    public func resolvedPolicy(model: EmotionModel) throws(ConfigError) -> LegPolicy {
        var p = policy.tuned(by: model.decision)
        if let v = decisionOverride.smoothing { p.smoothing = v }
        if let v = decisionOverride.enterUpset { p.enterUpset = v }
        if let v = decisionOverride.exitUpset { p.exitUpset = v }
        if let v = decisionOverride.enterWindows { p.enterWindows = v }
        if let v = decisionOverride.escalateUpset { p.escalateUpset = v }
        if let v = decisionOverride.escalateUpsetSeconds { p.escalateUpsetSeconds = v }
        if let v = decisionOverride.escalateWithinSeconds { p.escalateWithinSeconds = v }
        guard p.exitUpset <= p.enterUpset else {
            throw ConfigError(
                "policy.exit_upset (\(p.exitUpset)) must not exceed enter_upset (\(p.enterUpset), "
                    + (decisionOverride.enterUpset == nil ? "the model's" : "the config's") + ")")
        }
        guard p.escalateUpsetSeconds <= p.escalateWithinSeconds else {
            throw ConfigError(
                "policy.escalate_upset_s (\(p.escalateUpsetSeconds)) must not exceed escalate_within_s "
                    + "(\(p.escalateWithinSeconds)): that escalation could never fire")
        }
        return p
    }
}

/// The call history (`history:` in the config, `serve --history`).
public struct HistoryConfig: Sendable, Equatable {
    /// An SQLite file (`PATH` or `sqlite:PATH`) or a PostgreSQL URL (`postgres://user@host/db`); nil: off.
    public var store: String? = "emotiontap-history.sqlite"
    /// Ended legs older than this many days are removed; nil keeps them.
    public var retentionDays: Int? = 90
    /// The per-window events (timelines) go after this many days, the legs' summaries stay until
    /// `retentionDays`; nil: the same as the legs.
    public var timelineRetentionDays: Int?
    /// This instance's name in a shared store; nil: the host name.
    public var instance: String?

    public init() {}

    public enum Location: Sendable, Equatable {
        case sqlite(path: String)
        case postgres(url: String)
    }

    public static func location(_ text: String) throws(ConfigError) -> Location {
        let lower = text.lowercased()
        if lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://") { return .postgres(url: text) }
        let path = lower.hasPrefix("sqlite:") ? String(text.dropFirst("sqlite:".count)) : text
        guard !path.isEmpty, !path.contains("://") else {
            throw ConfigError("must be an SQLite file path (or sqlite:PATH) or a postgres:// URL")
        }
        return .sqlite(path: path)
    }

    public var resolvedInstance: String {
        if let instance { return instance }
        let host = ProcessInfo.processInfo.hostName
        return LegRequest.validIdentifier(host) ? host : "emotiontap"
    }
}

/// The SIPREC recording server (`sip:` in the config, `serve --sip`).
public struct SIPConfig: Sendable, Equatable {
    /// "HOST:PORT" for UDP and TCP; nil: no SIP.
    public var listen: String?
    /// "HOST:PORT" for TLS, with `tlsCertificateDirectory` holding agent.pem (key and certificate).
    public var tlsListen: String?
    public var tlsCertificateDirectory: String?
    public enum CallIDSource: String, Sendable { case callID = "call_id", sessionID = "session_id" }
    /// What a recorded stream's `call_id` is: the INVITE's Call-ID, or the metadata's session id.
    public var callIDSource = CallIDSource.callID
    /// Glob patterns over participant AORs (without "sip:"): a match is the agent, anyone else the customer.
    public var agentAORs: [String] = []
    /// Audio streams one session may open (more: 503).
    public var maxStreams = 4
    /// The address SDP answers give for our RTP ports (`c=`), when it is not `rtp.host` (a wildcard
    /// bind, NAT): nil uses `rtp.host`, and the service refuses to start with a wildcard and no address.
    public var mediaAddress: String?
    /// Session timer (RFC 4028) we ask for, and the smallest interval we accept (smaller: 422). RFC 4028
    /// sets 90 s as the floor; lower values are for tests.
    public var sessionExpires = 1800
    public var minSessionExpires = 90

    public init() {}

    /// What SDP answers carry as the media address.
    public func advertisedMediaAddress(rtpHost: String) -> String { mediaAddress ?? rtpHost }

    /// Something an SRC can send RTP to: not a wildcard or a multicast address.
    public static func isAdvertisable(_ host: String) -> Bool {
        guard !host.isEmpty, host != "0.0.0.0", !host.contains(":"), !host.contains(" ") else { return false }
        let octets = host.split(separator: ".").compactMap { UInt8($0) }
        if octets.count == 4 { return !(224...239).contains(octets[0]) && host != "255.255.255.255" }
        return host.allSatisfy { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }
    }

    /// "HOST:PORT" as a Sofia-SIP URL ("sip:HOST:PORT"); the host must be an IPv4 address or a name.
    public static func url(_ hostPort: String, scheme: String) throws(ConfigError) -> String {
        let parts = hostPort.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port),
            parts[0].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" })
        else { throw ConfigError("must be HOST:PORT, e.g. 127.0.0.1:5070") }
        return "\(scheme):\(parts[0]):\(port)"
    }
}

/// Stream sources of legs besides RTP: Asterisk AudioSocket (TCP) and the WebSocket protocols under
/// `/v1/stream/` on the API's port.
public struct StreamsConfig: Sendable, Equatable {
    /// "host:port" to accept AudioSocket connections on; nil: off.
    public var audiosocketListen: String?
    /// The role of an AudioSocket leg the API did not announce (`POST /v1/legs` with `audiosocket_uuid`).
    public var audiosocketRole = "customer"
    /// `/v1/stream/audio-fork`, `/jambonz`, `/twilio` and `/audiohook` on the API's port.
    public var webSocket = true
    /// Genesys AudioHook: each API key's client secret (decoded; empty: unsigned requests allowed).
    /// With none configured, AudioHook connections need the API token like the other streams.
    public var audiohookKeys: [String: [UInt8]] = [:]
    /// Audio a stream leg may hold for its worker before the oldest is dropped.
    public var maxQueueMilliseconds = 4000

    public init() {}

    /// "host:port" with a port in 1-65535 (port 0 too: the system picks, for tests).
    @discardableResult
    public static func hostPort(_ text: String) throws(ConfigError) -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port), colon != text.startIndex
        else { throw ConfigError("'\(text)' is not host:port") }
        return (String(text[..<colon]), port)
    }
}
