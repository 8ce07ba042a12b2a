import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle

/// The live view: `GET /v1/events/stream` (every published event as server-sent events) and `GET /`
/// (the supervisor page that reads it).
extension ControlAPI {
    /// How many events a slow client may fall behind by before it loses the oldest.
    static let streamBuffer = 2000
    private static let accelBuffering = HTTPFields.Element.Name("X-Accel-Buffering")!
    private static let referrerPolicy = HTTPFields.Element.Name("Referrer-Policy")!
    static let eventTypes = ["leg.start", "emotion", "state", "escalate", "leg.end", "heartbeat"]

    /// `?call_id=X` keeps one call's events, `?types=emotion,state` some types; both may be given.
    static func eventFilter(_ request: Request) throws(APIError) -> EventFilter {
        let query = request.uri.queryParameters
        var filter = EventFilter()
        if let call = query.get("call_id"), !call.isEmpty { filter.callID = String(call) }
        if let types = query.get("types") {
            filter.types = Set(types.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) })
            filter.types.remove("")
            if let unknown = filter.types.sorted().first(where: { !eventTypes.contains($0) }) {
                throw APIError(
                    .badRequest, "unknown event type '\(unknown)' (\(eventTypes.joined(separator: ", ")))")
            }
        }
        return filter
    }

    /// One SSE message: `event:` the type, `id:` the seq, `data:` the datagram's JSON (one line).
    static func serverSentEvent(_ item: LiveEvent) -> String {
        switch item {
        case .event(let e): "event: \(e.type)\nid: \(e.sequence)\ndata: \(e.text)\n\n"
        case .keepAlive: ": keep-alive\n\n"
        }
    }

    /// Streams until the client goes (a write fails), or the server shuts down gracefully: the
    /// subscription ends, what it holds is written, and the response finishes so the server can stop.
    func eventStream(_ request: Request) throws(APIError) -> Response {
        let filter = try Self.eventFilter(request)
        let publisher = manager.publisher
        // A comment line this often while nothing else is sent (`http.stream_keepalive_s`): proxies
        // keep the connection open, and a client that has gone is noticed when it is written.
        let keepAlive = Duration.milliseconds(Int(manager.config.streamKeepAliveSeconds * 1000))
        let body = ResponseBody { writer in
            let (id, events) = publisher.subscribe(filter, buffer: Self.streamBuffer)
            defer { publisher.unsubscribe(id) }
            // At once, so the client knows the stream is open before the first event.
            try await writer.write(ByteBuffer(string: "retry: 3000\n: connected\n\n"))
            try await withGracefulShutdownHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: keepAlive)
                            if !Task.isCancelled { publisher.keepAlive(id) }
                        }
                    }
                    for await item in events {
                        try await writer.write(ByteBuffer(string: Self.serverSentEvent(item)))
                    }
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                publisher.unsubscribe(id)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache",
                // nginx and the like buffer responses unless told not to.
                Self.accelBuffering: "no",
            ],
            body: body)
    }

    /// The supervisor page: one document, nothing loaded from elsewhere (the policy says so too).
    static func supervisorPage() -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-cache",
                .contentSecurityPolicy:
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
                // The page may have been opened with ?token=: keep it out of Referer headers.
                Self.referrerPolicy: "no-referrer",
            ],
            body: .init(byteBuffer: ByteBuffer(string: SupervisorPage.html)))
    }
}
