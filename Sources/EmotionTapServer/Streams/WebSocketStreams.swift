import EmotionMedia
import EmotionProtocol
import EmotionStreams
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import Metrics
import NIOCore
import Synchronization

/// The WebSocket stream protocols, on the API's port: `/v1/stream/audio-fork` (FreeSWITCH
/// mod_audio_fork and mod_audio_stream), `/v1/stream/jambonz` (the `listen` verb), `/v1/stream/twilio`
/// (Twilio Media Streams and its copies) and `/v1/stream/audiohook` (Genesys AudioHook v2). Each
/// connection becomes one leg per channel or track, fed through the same inbox and worker path as an
/// AudioSocket leg, and ends with its stream (close, stop, hangup, or the media timeout).
public final class WebSocketStreams: Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case audioFork = "audio-fork"
        case jambonz
        case twilio
        case audiohook
    }

    let manager: LegManager
    let authToken: String?
    let audiohookKeys: [String: [UInt8]]
    let logger: Logger
    /// The HTTP port once it listens (leg.start's `port` for these legs).
    let httpPort: Atomic<Int>
    let malformed: [Kind: Counter]
    let refused: [Kind: Counter]

    /// The largest message a stream may send: 2 s of 16 kHz stereo L16 is 128 kB.
    public static let maxMessage = 1 << 20
    /// How long an AudioHook client has to send `open` (Genesys waits 5 s for `opened`).
    static let openTimeout = Duration.seconds(5)

    init(
        manager: LegManager, authToken: String?, audiohookKeys: [String: [UInt8]], logger: Logger,
        metrics: any MetricsFactory
    ) {
        self.manager = manager
        self.authToken = authToken
        self.audiohookKeys = audiohookKeys
        self.logger = logger
        httpPort = Atomic(0)
        var m: [Kind: Counter] = [:]
        var r: [Kind: Counter] = [:]
        for kind in Kind.allCases {
            m[kind] = Counter(
                label: "emotiontap_stream_malformed_total", dimensions: [("stream", kind.rawValue)], factory: metrics)
            r[kind] = Counter(
                label: "emotiontap_stream_connections_refused_total", dimensions: [("stream", kind.rawValue)],
                factory: metrics)
        }
        malformed = m
        refused = r
    }

    // MARK: Upgrade

    /// Why a request may not open a stream (nil: it may), as the status and sentence the HTTP router
    /// answers with when the upgrade is refused.
    func refusal(kind: Kind, request: Request) -> APIError? {
        if kind == .audiohook {
            for name in ["audiohook-organization-id", "audiohook-session-id", "audiohook-correlation-id"] {
                guard let v = request.headers[HTTPField.Name(name)!], UUID(uuidString: v) != nil else {
                    return APIError(.badRequest, "\(name) must be a UUID")
                }
            }
            if !audiohookKeys.isEmpty {
                var headers: [String: String] = [:]
                for field in request.headers { headers[field.name.canonicalName] = field.value }
                let verdict = AudioHookSignature.verify(
                    requestTarget: request.uri.description, authority: request.head.authority ?? "",
                    headers: headers, secrets: audiohookKeys)
                if case .failure(let problem) = verdict { return APIError(.unauthorized, problem.description) }
                return nil
            }
        }
        guard let authToken else { return nil }
        return Self.hasToken(request, authToken) ? nil : APIError(.unauthorized, "a valid bearer token is required")
    }

    /// `Authorization: Bearer TOKEN`, Basic with the token as password (mod_audio_fork, jambonz wsAuth),
    /// or `?token=TOKEN` (Twilio's URL).
    static func hasToken(_ request: Request, _ token: String) -> Bool {
        let expected = Array(token.utf8)
        let header = request.headers[.authorization] ?? ""
        if header.hasPrefix("Bearer ") {
            return BearerTokenMiddleware.constantTimeEqual(Array(header.utf8.dropFirst(7)), expected)
        }
        if header.hasPrefix("Basic "), let data = Data(base64Encoded: String(header.dropFirst(6))),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        {
            return BearerTokenMiddleware.constantTimeEqual(Array(text[text.index(after: colon)...].utf8), expected)
        }
        if let q = request.uri.queryParameters.get("token") {
            return BearerTokenMiddleware.constantTimeEqual(Array(q.utf8), expected)
        }
        return false
    }

    static let webSocketProtocol = HTTPField.Name("Sec-WebSocket-Protocol")!

    /// The subprotocol to answer with: the one the client offered, for the protocols that name one
    /// (libwebsockets fails the handshake on any other name, and accepts none).
    static func subprotocol(kind: Kind, request: Request) -> HTTPFields {
        let offered = (request.headers[Self.webSocketProtocol] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        for name in ["audio.jambonz.org", "audio.drachtio.org"] where offered.contains(name) {
            return [Self.webSocketProtocol: name]
        }
        return [:]
    }

    func router() -> Router<BasicWebSocketRequestContext> {
        let router = Router(context: BasicWebSocketRequestContext.self)
        for kind in Kind.allCases {
            router.ws(
                RouterPath("/v1/stream/\(kind.rawValue)"),
                // Refusals go over the socket: hummingbird-websocket answers a refused upgrade with a
                // bare 400, and AudioHook's own way to say "unauthorized" is a `disconnect` message.
                shouldUpgrade: { request, _ in .upgrade(Self.subprotocol(kind: kind, request: request)) },
                onUpgrade: { [self] inbound, outbound, context in
                    let connection = StreamConnection(
                        streams: self, kind: kind, request: context.request, outbound: outbound)
                    if kind == .twilio, let token = authToken, !Self.hasToken(context.request, token) {
                        // Twilio drops a <Stream> URL's query and sends no headers: its token may come
                        // in `start` as <Parameter name="token">, checked there.
                        connection.requiredToken = token
                        await connection.run(inbound)
                    } else if let refusal = refusal(kind: kind, request: context.request) {
                        refused[kind]?.increment()
                        logger.notice(
                            "stream connection refused",
                            metadata: ["stream": "\(kind.rawValue)", "reason": "\(refusal.message)"])
                        await connection.refuse(inbound, refusal.message)
                    } else {
                        await connection.run(inbound)
                    }
                })
        }
        return router
    }
}

/// What goes out on a stream's socket, in order: protocol replies and results, and the note that a
/// leg ended (the writer closes the socket when every leg ended on the service's side).
enum StreamOutput: Sendable {
    case text(String)
    case legEnded
    case close
    /// Close code 1008 (policy violation) with the reason.
    case refuse(String)
}

/// One WebSocket stream connection: reads messages, feeds the legs, writes replies and results.
final class StreamConnection: @unchecked Sendable {
    // The reader task owns `legs`, `byTrack`, `closing`; `hook` is shared with the worker's event sink.
    let streams: WebSocketStreams
    let kind: WebSocketStreams.Kind
    let request: Request
    let outbound: WebSocketOutboundWriter
    let output: AsyncStream<StreamOutput>
    let continuation: AsyncStream<StreamOutput>.Continuation
    private var legs: [StreamLegs] = []
    private var byTrack: [String: StreamLegs] = [:]
    private let hook: Mutex<AudioHookSession?>
    private let endedByUs = Atomic<Bool>(false)
    /// How many legs the connection made (the writer closes the socket when as many have ended).
    private let legTotal = Atomic<Int>(0)
    private let sendResults: Bool
    /// Twilio without a token at the upgrade: `start` must carry it as a custom parameter.
    var requiredToken: String?

    init(streams: WebSocketStreams, kind: WebSocketStreams.Kind, request: Request, outbound: WebSocketOutboundWriter) {
        self.streams = streams
        self.kind = kind
        self.request = request
        self.outbound = outbound
        (output, continuation) = AsyncStream.makeStream(of: StreamOutput.self, bufferingPolicy: .bufferingNewest(256))
        let session = request.headers[HTTPField.Name("audiohook-session-id")!]?.lowercased()
        hook = Mutex(kind == .audiohook ? AudioHookSession(sessionID: session ?? "") : nil)
        sendResults = request.uri.queryParameters.get("results") != "false"
    }

    var logger: Logger { streams.logger }
    var query: [String: String] {
        var q: [String: String] = [:]
        for (k, v) in request.uri.queryParameters { q[String(k)] = String(v) }
        return q
    }

    func run(_ inbound: WebSocketInboundStream) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.write() }
            group.addTask { await self.read(inbound) }
            await group.next()
            // Either side finished: the other follows.
            continuation.finish()
            group.cancelAll()
        }
        for legs in legs { legs.end(reason: "closed") }
    }

    /// Tells a client it may not stream: AudioHook's `disconnect` (reason `unauthorized`) answering its
    /// `open`, then `closed` for its `close`; the others get close code 1008 with the reason.
    func refuse(_ inbound: WebSocketInboundStream, _ why: String) async {
        guard kind == .audiohook else {
            try? await outbound.close(.policyViolation, reason: String(why.prefix(120)))
            return
        }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Task.sleep(for: WebSocketStreams.openTimeout * 2)
                    throw CancellationError()
                }
                group.addTask { [self] in
                    for try await message in inbound.messages(maxSize: WebSocketStreams.maxMessage) {
                        guard case .text(let text) = message else { continue }
                        let reply =
                            withSession { session -> String? in
                                if session.state == .awaitingOpen { return session.reject(text, info: why) }
                                return session.receive(text).compactMap { action -> String? in
                                    if case .send(let t) = action { return t } else { return nil }
                                }.first
                            } ?? nil
                        if let reply { try await outbound.write(.text(reply)) }
                        if hook.withLock({ $0?.state == .closed }) { return }
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {}
        try? await outbound.close(.normalClosure, reason: nil)
    }

    private func write() async {
        var ended = 0
        for await item in output {
            do {
                switch item {
                case .text(let text): try await outbound.write(.text(text))
                case .close:
                    try await outbound.close(.normalClosure, reason: nil)
                    return
                case .refuse(let why):
                    try await outbound.close(.policyViolation, reason: String(why.prefix(120)))
                    return
                case .legEnded:
                    ended += 1
                    // Ended on the service's side (media timeout, DELETE): end the stream too.
                    if ended >= legTotal.load(ordering: .relaxed), !endedByUs.load(ordering: .relaxed) {
                        if kind == .audiohook,
                            let text = hook.withLock({ $0?.disconnect(reason: "completed", info: "the legs ended") })
                        {
                            try await outbound.write(.text(text))
                        } else {
                            try await outbound.close(.normalClosure, reason: "leg ended")
                            return
                        }
                    }
                }
            } catch {
                return
            }
        }
    }

    private func read(_ inbound: WebSocketInboundStream) async {
        do {
            if kind == .audiohook {
                try await readAudioHook(inbound)
            } else {
                for try await message in inbound.messages(maxSize: WebSocketStreams.maxMessage) {
                    switch kind {
                    case .twilio: twilio(message)
                    case .audioFork, .jambonz: fork(message)
                    case .audiohook: break
                    }
                }
            }
        } catch {
            logger.debug("stream connection ended", metadata: ["stream": "\(kind.rawValue)", "error": "\(error)"])
        }
    }

    /// A message the connection could not use: counted on its legs (as `malformed`) and in the metric.
    private func countMalformed(_ why: String) {
        for l in legs { l.countMalformed() }
        noteMalformed(why)
    }

    /// The metric and the log only (the legs counted it already).
    private func noteMalformed(_ why: String) {
        streams.malformed[kind]?.increment()
        logger.debug("stream message skipped", metadata: ["stream": "\(kind.rawValue)", "reason": "\(why)"])
    }

    private func makeLegs(
        format: StreamAudioFormat, callID: String, roles: [String], streamID: String, agentID: String?,
        tags: [String: String]
    ) -> StreamLegs? {
        let sink: (@Sendable (Event.Body, String) -> Void)? = { [weak self] body, datagram in
            self?.result(body, datagram)
        }
        do throws(LegRequestError) {
            let made = try StreamLegs(
                manager: streams.manager, format: format, callID: callID, roles: roles,
                origin: StreamOrigin(kind: kind.rawValue, id: streamID),
                listenerPort: streams.httpPort.load(ordering: .relaxed), source: SourceAddress(ipv4: 0, port: 0),
                agentID: agentID, tags: tags, eventSink: sink)
            legs.append(made)
            legTotal.add(made.legs.count, ordering: .relaxed)
            return made
        } catch {
            streams.refused[kind]?.increment()
            logger.warning(
                "stream legs not created", metadata: ["stream": "\(kind.rawValue)", "error": "\(error)"])
            return nil
        }
    }

    /// An event of one of this connection's legs (on the worker thread): results back where the
    /// protocol has a way (AudioHook `event`, mod_audio_fork's `json` message), and leg ends.
    private func result(_ body: Event.Body, _ datagram: String) {
        if case .legEnd = body { continuation.yield(.legEnded) }
        guard sendResults else { return }
        switch body {
        case .emotion, .state, .escalate, .legEnd:
            switch kind {
            case .audiohook:
                // Numbered under the session's lock, so `seq` follows the order on the socket.
                withSession { session in
                    guard session.state != .closed else { return }
                    continuation.yield(.text(session.event(datagram: datagram)))
                }
            case .audioFork:
                continuation.yield(.text("{\"type\":\"json\",\"data\":\(datagram)}"))
            case .jambonz, .twilio:
                break
            }
        default:
            break
        }
    }

    // MARK: mod_audio_fork, mod_audio_stream, jambonz

    private var metadataSeen = false

    private func fork(_ message: WebSocketMessage) {
        switch message {
        case .text(let text):
            // The first text frame is the metadata; later ones (send_text) are not audio.
            guard !metadataSeen else { return }
            metadataSeen = true
            startFork(metadata: text)
        case .binary(let buffer):
            if !metadataSeen {
                metadataSeen = true
                startFork(metadata: nil)
            }
            guard let legs = legs.first else { return countMalformed("no legs") }
            buffer.withUnsafeReadableBytes { bytes in
                if !legs.push(bytes) { noteMalformed("binary frame of \(bytes.count) bytes is not whole samples") }
            }
        }
    }

    private func startFork(metadata: String?) {
        var parsed = ForkMetadata.parse(text: metadata, query: query)
        if case .failure = parsed, metadata != nil {
            // mod_audio_stream's metadata may be any text: keep the query's view of the stream.
            countMalformed("metadata is not a JSON object")
            parsed = ForkMetadata.parse(text: nil, query: query)
        }
        guard case .success(let m) = parsed else {
            if case .failure(let problem) = parsed {
                logger.warning("stream refused", metadata: ["reason": "\(problem)"])
            }
            streams.refused[kind]?.increment()
            continuation.yield(.close)
            return
        }
        let id = m.callID ?? "stream-" + UUID().uuidString.lowercased()
        let format = StreamAudioFormat(encoding: .l16LittleEndian, sampleRate: m.sampleRate, channels: m.channels)
        if makeLegs(format: format, callID: id, roles: m.roles, streamID: id, agentID: m.agentID, tags: m.tags) == nil {
            continuation.yield(.close)
        }
    }

    // MARK: Twilio

    private func twilio(_ message: WebSocketMessage) {
        guard case .text(let text) = message else { return countMalformed("Twilio streams send text frames only") }
        let parsed = TwilioMediaStream.parse(text)
        if requiredToken != nil {
            // Nothing but `start` (and `connected`) counts before the token is checked.
            switch parsed {
            case .success(.start), .success(.connected): break
            default: return
            }
        }
        switch parsed {
        case .failure(let problem):
            countMalformed(problem.description)
        case .success(.start(let start)):
            guard legs.isEmpty else { return countMalformed("start twice") }
            if let token = requiredToken {
                guard let given = start.customParameters["token"],
                    BearerTokenMiddleware.constantTimeEqual(Array(given.utf8), Array(token.utf8))
                else {
                    streams.refused[.twilio]?.increment()
                    logger.notice(
                        "stream connection refused", metadata: ["stream": "twilio", "reason": "no valid token"])
                    continuation.yield(.refuse("a valid token is required (URL ?token= or <Parameter name=\"token\">)"))
                    return
                }
                requiredToken = nil
            }
            guard start.encoding == "audio/x-mulaw", start.sampleRate == 8000, start.channels == 1 else {
                logger.warning("Twilio stream refused", metadata: ["format": "\(start.encoding)/\(start.sampleRate)"])
                continuation.yield(.close)
                return
            }
            let p = start.customParameters
            let callID = p["call_id"] ?? start.callSid
            let format = StreamAudioFormat(encoding: .pcmu, sampleRate: 8000, channels: 1)
            for track in start.tracks.isEmpty ? ["inbound"] : start.tracks {
                // inbound: what Twilio hears from the call's party (the caller); outbound: what it sends them.
                let name = track.replacingOccurrences(of: "_track", with: "")
                let role = p["role_\(name)"] ?? (name == "outbound" ? "agent" : "customer")
                if let legs = makeLegs(
                    format: format, callID: callID, roles: [role], streamID: start.streamSid, agentID: p["agent_id"],
                    tags: [:])
                {
                    byTrack[name] = legs
                }
            }
        case .success(.media(let track, let payload)):
            guard let legs = byTrack[track] else { return countMalformed("media for track '\(track.prefix(32))'") }
            payload.withUnsafeBytes { _ = legs.push($0) }
        case .success(.stop):
            endedByUs.store(true, ordering: .relaxed)
            for legs in legs { legs.end(reason: "stop") }
            continuation.yield(.close)
        case .success(.connected), .success(.other):
            break
        }
    }

    // MARK: AudioHook

    private func readAudioHook(_ inbound: WebSocketInboundStream) async throws {
        // `open` within 5 s, or the connection is dropped.
        let opened = Atomic<Bool>(false)
        let timer = Task { [continuation, logger] in
            try await Task.sleep(for: WebSocketStreams.openTimeout)
            if !opened.load(ordering: .relaxed) {
                logger.warning("AudioHook client sent no open in time; closed")
                continuation.yield(.close)
            }
        }
        defer { timer.cancel() }
        for try await message in inbound.messages(maxSize: WebSocketStreams.maxMessage) {
            switch message {
            case .text(let text):
                let actions = withSession { $0.receive(text) } ?? []
                for action in actions {
                    switch action {
                    case .send(let reply): continuation.yield(.text(reply))
                    case .start(let open):
                        opened.store(true, ordering: .relaxed)
                        startAudioHook(open)
                    case .pause: for l in legs { l.setPaused(true) }
                    case .resume: for l in legs { l.setPaused(false) }
                    case .close(let reason):
                        endedByUs.store(true, ordering: .relaxed)
                        await endLegs(reason: reason == "error" ? "error" : "close")
                        if let closed = withSession({ $0.state == .closed ? nil : $0.closed() }) ?? nil {
                            continuation.yield(.text(closed))
                        }
                    case .fail(let info):
                        streams.malformed[.audiohook]?.increment()
                        logger.notice("AudioHook session failed", metadata: ["reason": "\(info)"])
                        endedByUs.store(true, ordering: .relaxed)
                        await endLegs(reason: "error")
                    }
                }
            case .binary(let buffer):
                let accepts = hook.withLock { $0?.acceptsAudio ?? false }
                guard accepts else {
                    abortAudioHook("audio before open")
                    countMalformed("audio before open")
                    continue
                }
                guard let legs = legs.first else { continue }  // a probe, or media: []
                buffer.withUnsafeReadableBytes { bytes in
                    if !legs.push(bytes) { noteMalformed("audio frame of \(bytes.count) bytes is not whole samples") }
                }
            }
        }
    }

    private func startAudioHook(_ open: AudioHookSession.Open) {
        guard let media = open.media, !open.isProbe else { return }
        let roles = media.channels.map { $0 == "internal" ? "agent" : "customer" }
        let format = StreamAudioFormat(encoding: .pcmu, sampleRate: 8000, channels: media.channels.count)
        let session = hook.withLock { $0?.sessionID } ?? ""
        if makeLegs(
            format: format, callID: open.conversationID, roles: roles, streamID: session, agentID: nil, tags: [:])
            == nil
        {
            abortAudioHook("the service cannot take this call now (leg limit or overload)")
        }
    }

    /// Runs `body` on the AudioHook session under its lock (nil for the other protocols).
    private func withSession<T>(_ body: (inout AudioHookSession) -> T) -> T? {
        hook.withLock { stored in
            guard var session = stored else { return nil }
            defer { stored = session }
            return body(&session)
        }
    }

    /// Sends `disconnect` (reason `error`) for a problem the connection found.
    private func abortAudioHook(_ info: String) {
        for case .send(let reply) in withSession({ $0.abort(info) }) ?? [] { continuation.yield(.text(reply)) }
    }

    /// Ends the legs and waits (2 s at most) until each has published `leg.end`, so those results go
    /// out before `closed`.
    private func endLegs(reason: String) async {
        for l in legs { l.end(reason: reason) }
        let ids = legs.flatMap { $0.legs.map(\.id) }
        for _ in 0..<100 {
            if ids.allSatisfy({ streams.manager.snapshot(legID: $0) == nil }) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
