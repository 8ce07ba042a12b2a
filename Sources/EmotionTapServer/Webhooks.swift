import EmotionProtocol
import Foundation
import Logging
import Metrics
import ServiceLifecycle

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One configured webhook (`webhooks:` in the config).
public struct WebhookConfig: Sendable, Equatable {
    public var url: String
    /// Event types POSTed to it.
    public var events: [String] = ["escalate", "leg.end"]
    public var timeoutSeconds = 5.0
    /// Tries per event (the first and the retries, with backoff from 1 s doubling to 60 s); then it is
    /// given up and counted.
    public var maxAttempts = 6

    public init(url: String) { self.url = url }

    public static let eventTypes = ["leg.start", "emotion", "state", "escalate", "leg.end"]
}

/// POSTs events to the configured webhooks, off the legs' path: events arrive from the publisher's
/// buffered subscription; each webhook has its own queue and delivers in order, retrying an event
/// with backoff before it moves on. A receiver that is down delays only its own queue; its queue
/// keeps the newest events when full (the rest counted dropped). The body is the event as the
/// datagram carries it (with `sig` when events are signed); `X-EmotionTap-Signature: sha256=HEX` is
/// the HMAC of the whole body with the same key. HTTP is Foundation's URLSession (libcurl on Linux):
/// one session, connections kept alive, nothing more to build.
final class WebhookSender: @unchecked Sendable {
    // @unchecked: URLSession is thread-safe but not marked Sendable in corelibs-foundation.
    private let session: URLSession
    let hooks: [WebhookConfig]
    private let signer: EventSigner?
    private let logger: Logger
    private let delivered: Counter
    private let failed: Counter
    private let dropped: Counter
    private let attempts: Counter
    static let queueLimit = 10_000

    init(hooks: [WebhookConfig], hmacKey: String?, logger: Logger, metrics: any MetricsFactory) {
        self.hooks = hooks
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 2
        session = URLSession(configuration: configuration)
        signer = hmacKey.map { EventSigner(key: $0) }
        self.logger = logger
        delivered = Counter(
            label: "emotiontap_webhook_deliveries_total", dimensions: [("result", "delivered")], factory: metrics)
        failed = Counter(
            label: "emotiontap_webhook_deliveries_total", dimensions: [("result", "failed")], factory: metrics)
        dropped = Counter(
            label: "emotiontap_webhook_deliveries_total", dimensions: [("result", "dropped")], factory: metrics)
        attempts = Counter(label: "emotiontap_webhook_attempts_total", factory: metrics)
    }

    /// Delivers `events` (type, text) until the stream ends or the task is cancelled.
    func run(_ events: some AsyncSequence<(type: String, text: String), Never> & Sendable) async {
        let queues = hooks.map { _ in
            AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(Self.queueLimit))
        }
        await withTaskGroup(of: Void.self) { group in
            for (hook, queue) in zip(hooks, queues) {
                group.addTask { await self.deliverAll(queue.stream, to: hook) }
            }
            for await event in events {
                for (hook, queue) in zip(hooks, queues) where hook.events.contains(event.type) {
                    if case .dropped = queue.continuation.yield(event.text) { dropped.increment() }
                }
            }
            for queue in queues { queue.continuation.finish() }
        }
    }

    private func deliverAll(_ queue: AsyncStream<String>, to hook: WebhookConfig) async {
        for await body in queue {
            var attempt = 0
            while true {
                attempt += 1
                attempts.increment()
                let outcome = await post(body, to: hook)
                if outcome == nil {
                    delivered.increment()
                    break
                }
                if attempt >= hook.maxAttempts || Task.isCancelled {
                    failed.increment()
                    logger.warning(
                        "webhook gave up on an event",
                        metadata: ["url": "\(hook.url)", "attempts": "\(attempt)", "error": "\(outcome ?? "")"])
                    break
                }
                try? await Task.sleep(for: Self.backoff(attempt))
            }
        }
    }

    /// nil when the receiver took it (2xx), else why not.
    private func post(_ body: String, to hook: WebhookConfig) async -> String? {
        guard let url = URL(string: hook.url) else { return "not a URL" }
        var request = URLRequest(url: url, timeoutInterval: hook.timeoutSeconds)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("EmotionTap", forHTTPHeaderField: "User-Agent")
        if let signer {
            request.setValue("sha256=" + signer.signature(ofBody: body), forHTTPHeaderField: "X-EmotionTap-Signature")
        }
        request.httpBody = Data(body.utf8)
        do {
            let (_, response) = try await session.data(for: request)
            guard let status = (response as? HTTPURLResponse)?.statusCode else { return "no HTTP answer" }
            return (200..<300).contains(status) ? nil : "HTTP \(status)"
        } catch {
            return "\(error.localizedDescription)"
        }
    }

    /// 1 s doubling to 60 s.
    static func backoff(_ attempt: Int) -> Duration { .seconds(min(60, 1 << min(attempt - 1, 6))) }
}

/// The webhooks as a service of the application: subscribes to the publisher for the types any
/// webhook wants and hands them to `WebhookSender`; on shutdown it stops taking events and gives
/// the queues a moment to empty (a receiver that is down is not waited for).
struct WebhookService: Service {
    let sender: WebhookSender
    let publisher: EventPublisher
    static let shutdownGrace: Duration = .seconds(3)

    func run() async throws {
        let types = Set(sender.hooks.flatMap(\.events))
        let (id, events) = publisher.subscribe(EventFilter(types: types), buffer: WebhookSender.queueLimit)
        let stream = events.compactMap { live -> (type: String, text: String)? in
            if case .event(let e) = live { return (e.type, e.text) }
            return nil
        }
        let delivery = Task { await sender.run(stream) }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await delivery.value
            } onCancel: {
                delivery.cancel()
            }
        } onGracefulShutdown: {
            // The last leg.end events are published as the leg service ends its legs: take them, then stop.
            Task {
                try? await Task.sleep(for: Self.shutdownGrace)
                publisher.unsubscribe(id)
            }
        }
        publisher.unsubscribe(id)
    }
}
