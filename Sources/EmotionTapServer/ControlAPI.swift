import EmotionCore
import Foundation
import Hummingbird
import Prometheus

/// The HTTP control API: legs in and out, call state for dialplans, health and metrics.
public struct ControlAPI: Sendable {
    public let manager: LegManager
    public let registry: PrometheusCollectorRegistry
    public let authToken: String?
    /// Control bodies are small; anything larger is refused before parsing.
    public static let maxBody = 16 * 1024

    public init(manager: LegManager, registry: PrometheusCollectorRegistry, authToken: String?) {
        self.manager = manager
        self.registry = registry
        self.authToken = authToken
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: BearerTokenMiddleware(token: authToken))
        router.get("/healthz") { _, _ in Self.json(.ok, .object([("status", "ok"), ("legs", .int(Int64(manager.activeCount)))])) }
        router.get("/metrics") { _, _ in
            var buffer = [UInt8]()
            registry.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        router.post("/v1/legs") { request, _ in try await createLeg(request) }
        router.get("/v1/legs") { _, _ in Self.json(.ok, .object([("legs", .array(manager.snapshots().map(Self.describe)))])) }
        router.get("/v1/legs/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let s = manager.snapshot(legID: id) else { return Self.error(.notFound, "no leg '\(id)'") }
            return Self.json(.ok, Self.describe(s))
        }
        router.delete("/v1/legs/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            do throws(LegRequestError) {
                let s = try manager.end(legID: id)
                return Self.json(.ok, .object([("leg_id", .string(s.identity.legID)), ("state", "ending")]))
            } catch {
                return Self.error(.notFound, error.description)
            }
        }
        router.get("/v1/calls/:id") { request, context in callState(request, id: context.parameters.get("id") ?? "") }
        return router
    }

    // MARK: Handlers

    private func createLeg(_ request: Request) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: Self.maxBody) } catch {
            return Self.error(.contentTooLarge, "body over \(Self.maxBody) bytes")
        }
        let parsed: LegRequest
        switch LegRequest.parse(Data(buffer: body)) {
        case .success(let request): parsed = request
        case .failure(let problem): return Self.error(.badRequest, problem.description)
        }
        let (callID, role, codec, port) = (parsed.callID, parsed.role, parsed.codec, parsed.port)
        do throws(LegRequestError) {
            let s = try manager.create(callID: callID, role: role, codec: codec, port: port)
            return Self.json(.created, .object([
                ("leg_id", .string(s.identity.legID)), ("call_id", .string(callID)), ("role", .string(role)),
                ("rtp", .object([("host", .string(manager.config.rtpHost)), ("port", .int(Int64(s.port)))])),
            ]))
        } catch {
            switch error {
            case .invalid: return Self.error(.badRequest, error.description)
            case .portUnavailable: return Self.error(.conflict, error.description)
            case .noFreePort, .legLimit: return Self.error(.serviceUnavailable, error.description)
            case .notFound: return Self.error(.notFound, error.description)
            }
        }
    }

    /// For dialplans: JSON by default; `?format=text` gives `key=value` lines, and `&field=NAME` just one value
    /// (Asterisk: `${CURL(http://127.0.0.1:8088/v1/calls/${UNIQUEID}?format=text&field=escalate)}` → 1 or 0).
    private func callState(_ request: Request, id: String) -> Response {
        let legs = manager.snapshots(callID: id)
        guard !legs.isEmpty else { return Self.error(.notFound, "no active legs for call '\(id)'") }
        let customers = legs.filter { manager.config.policy.escalateRoles.contains($0.identity.role) }
        let upset = customers.compactMap(\.upset).max()
        let escalate = customers.contains { $0.escalated }
        let mood = customers.contains { $0.mood == .upset } ? "upset" : "calm"
        let query = request.uri.queryParameters
        if query.get("format") == "text" {
            let fields: [(String, String)] = [
                ("call_id", id), ("state", mood), ("upset", upset.map { String(format: "%.2f", $0) } ?? ""),
                ("escalate", escalate ? "1" : "0"), ("legs", "\(legs.count)"),
            ]
            if let field = query.get("field") {
                guard let value = fields.first(where: { $0.0 == field })?.1 else {
                    return Self.error(.badRequest, "unknown field '\(field)' (state, upset, escalate, legs, call_id)")
                }
                return Self.text(value)
            }
            return Self.text(fields.map { "\($0.0)=\($0.1)" }.joined(separator: "\n") + "\n")
        }
        return Self.json(.ok, .object([
            ("call_id", .string(id)), ("state", .string(mood)), ("upset", upset.map { .number($0, places: 3) } ?? .null),
            ("escalate", .bool(escalate)), ("legs", .array(legs.map(Self.describe))),
        ]))
    }

    // MARK: Rendering

    static func describe(_ s: LegSnapshot) -> JSON {
        let st = s.statistics, c = s.counters
        return .object([
            ("leg_id", .string(s.identity.legID)), ("call_id", .string(s.identity.callID)), ("role", .string(s.identity.role)),
            ("state", .string(s.state)), ("mood", .string(s.mood.rawValue)),
            ("upset", s.upset.map { .number($0, places: 3) } ?? .null), ("label", .optional(s.label?.rawValue)),
            ("escalated", .bool(s.escalated)), ("codec", .optional((s.codec ?? s.requestedCodec)?.rawValue)),
            ("payload_type", s.payloadType.map { .int(Int64($0)) } ?? .null), ("port", .int(Int64(s.port))),
            ("media_s", .number(s.mediaSeconds, places: 2)),
            ("rtp", .object([
                ("packets", .int(Int64(c.packets))), ("received", .int(Int64(st.arrived))), ("lost", .int(Int64(st.lost))),
                ("reordered", .int(Int64(st.reordered))), ("duplicates", .int(Int64(st.allDuplicates))), ("late", .int(Int64(c.late))),
                ("jitter_ms", .number(st.jitterMilliseconds, places: 2)), ("concealed_ms", .int(Int64(c.concealedMilliseconds))),
                ("unknown_payload_type", .int(Int64(c.unknownPayloadType))), ("undecodable", .int(Int64(c.undecodable))),
                ("source_not_allowed", .int(Int64(c.sourceNotAllowed))), ("wrong_source", .int(Int64(c.wrongSource))),
                ("malformed", .int(Int64(c.malformed))), ("queue_overflow", .int(Int64(c.queueOverflow))),
            ])),
        ])
    }

    static func json(_ status: HTTPResponse.Status, _ body: JSON) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body.serialized + "\n")))
    }

    static func text(_ body: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, .object([("error", .object([("status", .int(Int64(status.code))), ("message", .string(message))]))]))
    }
}

/// Requires `Authorization: Bearer TOKEN` on everything but /healthz when a token is configured;
/// compares in constant time.
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token, request.uri.path != "/healthz" else { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), Self.constantTimeEqual(Array(header.utf8.dropFirst(7)), Array(token.utf8)) else {
            var response = ControlAPI.error(.unauthorized, "a valid bearer token is required")
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
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

/// The body of POST /v1/legs, checked field by field. Pure, so the fuzzer drives it directly.
public struct LegRequest: Sendable, Equatable {
    public var callID: String
    public var role: String
    public var codec: VoiceCodec?
    public var port: Int?

    public struct Problem: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    public static let knownFields = ["call_id", "role", "codec", "port"]

    /// The request, or what is wrong with it (one sentence, for a 400).
    public static func parse(_ body: Data) -> Result<LegRequest, Problem> {
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                return .failure(Problem(description: "body must be a JSON object"))
            }
            object = o
        } catch {
            return .failure(Problem(description: "body is not valid JSON"))
        }
        if let unknown = object.keys.sorted().first(where: { !knownFields.contains($0) }) {
            return .failure(Problem(description: "unknown field '\(unknown.prefix(64))' (known: \(knownFields.joined(separator: ", ")))"))
        }
        guard let callID = object["call_id"] as? String else { return .failure(Problem(description: "call_id (string) is required")) }
        guard let role = object["role"] as? String else { return .failure(Problem(description: "role (string) is required")) }
        var request = LegRequest(callID: callID, role: role)
        if let c = object["codec"], !(c is NSNull) {
            guard let text = c as? String, let parsed = VoiceCodec(rawValue: text.lowercased()) else {
                return .failure(Problem(description: "codec must be \"pcmu\", \"pcma\" or \"opus\""))
            }
            request.codec = parsed
        }
        if let p = object["port"], !(p is NSNull) {
            guard let n = p as? NSNumber, !(p is Bool), n.doubleValue.isFinite, Double(n.intValue) == n.doubleValue,
                  (1...65535).contains(n.intValue) else {
                return .failure(Problem(description: "port must be an integer in 1-65535"))
            }
            request.port = n.intValue
        }
        return .success(request)
    }

    public init(callID: String, role: String, codec: VoiceCodec? = nil, port: Int? = nil) {
        self.callID = callID
        self.role = role
        self.codec = codec
        self.port = port
    }
}
