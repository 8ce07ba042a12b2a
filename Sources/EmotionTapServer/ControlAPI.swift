import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionStreams
import Foundation
import Hummingbird
import Prometheus

/// An API failure: the status and one sentence, answered as `{"error": {"status", "message"}}`.
public struct APIError: HTTPResponseError {
    public let status: HTTPResponse.Status
    public let message: String

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = ControlAPI.json(
            status, .object([("error", .object([("status", .count(status.code)), ("message", .string(message))]))]))
        if status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer" }
        return response
    }
}

extension LegRequestError {
    /// The status each failure answers with.
    var apiError: APIError {
        switch self {
        case .invalid: APIError(.badRequest, description)
        case .portUnavailable: APIError(.conflict, description)
        case .noFreePort, .legLimit, .overloaded, .backlogged: APIError(.serviceUnavailable, description)
        case .notFound: APIError(.notFound, description)
        }
    }
}

/// The HTTP control API: legs in and out, call state for dialplans, health and metrics, and the live
/// view (the event stream and the supervisor page, in ControlAPI+EventStream.swift).
public struct ControlAPI: Sendable {
    public let manager: LegManager
    public let registry: PrometheusCollectorRegistry
    public let authToken: String?
    /// Control bodies are small; anything larger is refused before parsing.
    public static let maxBody = 16 * 1024

    public let recordings: RecordingSessions?

    /// A store shared with other instances (PostgreSQL): `GET /v1/calls/{id}` adds the call's legs
    /// that other instances hold. nil: this instance's legs only.
    public let sharedHistory: SharedCallView?

    /// The WebSocket stream protocols: their paths answer a plain GET (or a refused upgrade) with why.
    let streams: WebSocketStreams?
    /// Where AudioSocket streams connect, for legs announced with `audiosocket_uuid`.
    let audioSocket: AudioSocketServer?

    public init(
        manager: LegManager, recordings: RecordingSessions? = nil, registry: PrometheusCollectorRegistry,
        authToken: String?, sharedHistory: SharedCallView? = nil, streams: WebSocketStreams? = nil,
        audioSocket: AudioSocketServer? = nil
    ) {
        self.streams = streams
        self.audioSocket = audioSocket
        self.sharedHistory = sharedHistory
        self.manager = manager
        self.recordings = recordings
        self.registry = registry
        self.authToken = authToken
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: BearerTokenMiddleware(token: authToken))
        router.get("/healthz") { _, _ in
            // Degraded (503, so a load balancer or dispatcher sends new calls elsewhere) while the
            // workers are at their mark; the legs already here go on.
            let busy = manager.workerBusy
            let overload = manager.overload
            var fields: [(String, JSON)] = [
                ("status", .string(overload == nil ? "ok" : "degraded")), ("legs", .int(Int64(manager.activeCount))),
                ("worker_busy", JSON.number(busy, places: 3)),
                ("worker_backlog_ms", .int(Int64(manager.workerBacklogMilliseconds))),
            ]
            if let overload { fields.append(("reason", .string(overload.description))) }
            return Self.json(overload == nil ? .ok : .serviceUnavailable, .object(fields))
        }
        router.get("/metrics") { _, _ in
            var buffer = [UInt8]()
            registry.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        router.post("/v1/legs") { request, _ in try await createLeg(request) }
        // SIPREC recording sessions with their streams' legs (an empty list when SIP is off).
        router.get("/v1/sessions") { _, _ in
            Self.json(.ok, .object([("sessions", .array((recordings?.snapshots() ?? []).map(Self.describe)))]))
        }
        router.get("/v1/legs") { _, _ in
            Self.json(.ok, .object([("legs", .array(manager.snapshots().map(Self.describe)))]))
        }
        router.get("/v1/legs/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let s = manager.snapshot(legID: id) else { throw APIError(.notFound, "no leg '\(id)'") }
            return Self.json(.ok, Self.describe(s))
        }
        router.delete("/v1/legs/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            do throws(LegRequestError) {
                let s = try manager.end(legID: id)
                return Self.json(.ok, .object([("leg_id", .string(s.identity.legID)), ("state", "ending")]))
            } catch {
                throw error.apiError
            }
        }
        router.get("/v1/calls/:id") { request, context in
            try await callState(request, id: context.parameters.get("id") ?? "")
        }
        router.get("/v1/events/stream") { request, _ in try eventStream(request) }
        router.get("/") { _, _ in Self.supervisorPage() }
        // A stream request that was not upgraded lands here: say why (the upgrade's own checks).
        router.get("/v1/stream/:kind") { request, context -> Response in
            let name = context.parameters.get("kind") ?? ""
            guard let streams, let kind = WebSocketStreams.Kind(rawValue: name) else {
                throw APIError(
                    .notFound, "no stream protocol '\(name.prefix(32))' (audio-fork, jambonz, twilio, audiohook)")
            }
            if let refusal = streams.refusal(kind: kind, request: request) { throw refusal }
            throw APIError(.upgradeRequired, "/v1/stream/\(kind.rawValue) takes a WebSocket upgrade")
        }
        return router
    }

    // MARK: Handlers

    private func createLeg(_ request: Request) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: Self.maxBody) } catch {
            throw APIError(.contentTooLarge, "body over \(Self.maxBody) bytes")
        }
        let parsed: LegRequest
        switch LegRequest.parse(Data(buffer: body)) {
        case .success(let request): parsed = request
        case .failure(let problem): throw APIError(.badRequest, problem.description)
        }
        let (callID, role, codec, port) = (parsed.callID, parsed.role, parsed.codec, parsed.port)
        if let uuid = parsed.audiosocketUUID { return try announceAudioSocket(parsed, uuid: uuid) }
        do throws(LegRequestError) {
            let s = try manager.create(
                callID: callID, role: role, codec: codec, port: port, payloadType: parsed.payloadType,
                srtp: parsed.srtp, agentID: parsed.agentID, tags: parsed.tags)
            return Self.json(
                .created,
                .object([
                    ("leg_id", .string(s.identity.legID)), ("call_id", .string(callID)), ("role", .string(role)),
                    ("rtp", .object([("host", .string(manager.config.rtpHost)), ("port", .int(Int64(s.port)))])),
                ]))
        } catch {
            throw error.apiError
        }
    }

    /// A leg for an AudioSocket stream the dialplan is about to connect: it waits (state `waiting`, the
    /// media timeout running) until a connection brings that UUID.
    private func announceAudioSocket(_ parsed: LegRequest, uuid: String) throws -> Response {
        guard let audioSocket, let listenerPort = audioSocket.port else {
            throw APIError(
                .badRequest, "audiosocket_uuid: AudioSocket is off (set streams.audiosocket or --audiosocket)")
        }
        do throws(LegRequestError) {
            let (s, _) = try manager.createStream(
                callID: parsed.callID, role: parsed.role, codec: .l16,
                origin: StreamOrigin(kind: "audiosocket", id: uuid), listenerPort: listenerPort,
                source: SourceAddress(ipv4: 0, port: 0), agentID: parsed.agentID, tags: parsed.tags,
                awaitConnection: true)
            return Self.json(
                .created,
                .object([
                    ("leg_id", .string(s.identity.legID)), ("call_id", .string(parsed.callID)),
                    ("role", .string(parsed.role)),
                    (
                        "audiosocket",
                        .object([
                            ("uuid", .string(uuid)), ("host", .string(audioSocket.host)),
                            ("port", .int(Int64(listenerPort))),
                        ])
                    ),
                ]))
        } catch {
            throw error.apiError
        }
    }

    /// For dialplans: JSON by default; `?format=text` gives `key=value` lines, and `&field=NAME` just one value
    /// (Asterisk: `${CURL(http://127.0.0.1:8088/v1/calls/${UNIQUEID}?format=text&field=escalate)}` → 1 or 0).
    private func callState(_ request: Request, id: String) async throws(APIError) -> Response {
        let legs = manager.snapshots(callID: id)
        // Legs of this call on other instances, from the shared store (their newest stored state).
        var remote: [SharedCallView.RemoteLeg] = []
        var remoteError: String?
        if let sharedHistory {
            do { remote = try await sharedHistory.remoteLegs(callID: id) } catch { remoteError = error.description }
        }
        guard !legs.isEmpty || !remote.isEmpty else { throw APIError(.notFound, "no active legs for call '\(id)'") }
        let roles = manager.config.policy.escalateRoles
        let customers = legs.filter { roles.contains($0.identity.role) }
        let remoteCustomers = remote.filter { roles.contains($0.role) }
        let upset = (customers.compactMap(\.upset) + remoteCustomers.compactMap(\.upset)).max()
        let escalate = customers.contains { $0.escalated } || remoteCustomers.contains { $0.escalated }
        let mood =
            customers.contains { $0.mood == .upset } || remoteCustomers.contains { $0.state == "upset" }
            ? "upset" : "calm"
        let query = request.uri.queryParameters
        if query.get("format") == "text" {
            let fields: [(String, String)] = [
                ("call_id", id), ("state", mood), ("upset", upset.map { String(format: "%.2f", $0) } ?? ""),
                ("escalate", escalate ? "1" : "0"), ("legs", "\(legs.count + remote.count)"),
            ]
            if let field = query.get("field") {
                guard let value = fields.first(where: { $0.0 == field })?.1 else {
                    throw APIError(.badRequest, "unknown field '\(field)' (state, upset, escalate, legs, call_id)")
                }
                return Self.text(value)
            }
            return Self.text(fields.map { "\($0.0)=\($0.1)" }.joined(separator: "\n") + "\n")
        }
        return Self.json(
            .ok,
            .object(
                [
                    ("call_id", .string(id)), ("state", .string(mood)),
                    ("upset", upset.map { .number($0, places: 3) } ?? .null),
                    ("escalate", .bool(escalate)),
                    ("legs", .array(legs.map(Self.describe) + remote.map(SharedCallView.describe))),
                ] + (remoteError.map { [("remote_error", .string($0))] } ?? [])))
    }

    // MARK: Rendering

    static func describe(_ s: LegSnapshot) -> JSON {
        .object([
            ("leg_id", .string(s.identity.legID)), ("call_id", .string(s.identity.callID)),
            ("role", .string(s.identity.role)), ("agent_id", .optional(s.identity.agentID)),
            ("tags", .object(s.identity.tags.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            ("state", .string(s.state)), ("mood", .string(s.mood.rawValue)),
            ("upset", s.upset.map { .number($0, places: 3) } ?? .null), ("label", .optional(s.label?.rawValue)),
            ("escalated", .bool(s.escalated)), ("codec", .optional((s.codec ?? s.requestedCodec)?.rawValue)),
            ("payload_type", s.payloadType.map { .count($0) } ?? .null), ("port", .count(s.port)),
            ("media_s", .number(s.mediaSeconds, places: 2)),
            ("rtp", .object(RTPTotalsCoding.fields(s.rtp))),
        ])
    }

    static func describe(_ s: RecordingSessions.Session) -> JSON {
        .object([
            ("session_id", .string(s.id)), ("call_id", .string(s.callID)), ("sip_call_id", .string(s.sipCallID)),
            ("created", .string(ISO8601DateFormatter().string(from: s.created))),
            (
                "streams",
                .array(
                    s.streams.map { st in
                        .object([
                            ("label", .optional(st.label)), ("participant", .optional(st.participant)),
                            ("role", .string(st.role)), ("leg_id", .optional(st.legID)),
                            ("port", st.port.map { .count($0) } ?? .null),
                        ])
                    })
            ),
        ])
    }

    static func json(_ status: HTTPResponse.Status, _ body: JSON) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: body.serialized + "\n")))
    }

    static func text(_ body: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Requires `Authorization: Bearer TOKEN` on everything but /healthz when a token is configured;
/// compares in constant time. The live view's routes also take `?token=TOKEN`: a browser's
/// EventSource cannot send headers.
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let token: String?
    static let queryTokenPaths: Set<String> = ["/", "/v1/events/stream"]

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        // Streams check their own credentials (the token, or AudioHook's signature) before the upgrade.
        guard let token, request.uri.path != "/healthz", !request.uri.path.hasPrefix("/v1/stream/") else {
            return try await next(request, context)
        }
        let header = request.headers[.authorization] ?? ""
        var supplied: [UInt8]? = header.hasPrefix("Bearer ") ? Array(header.utf8.dropFirst(7)) : nil
        if supplied == nil, Self.queryTokenPaths.contains(request.uri.path) {
            supplied = request.uri.queryParameters.get("token").map { Array($0.utf8) }
        }
        guard let supplied, Self.constantTimeEqual(supplied, Array(token.utf8)) else {
            throw APIError(.unauthorized, "a valid bearer token is required")
        }
        return try await next(request, context)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}
