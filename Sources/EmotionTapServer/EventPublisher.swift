import EmotionMedia
import EmotionProtocol
import EmotionUDP
import Foundation
import Logging
import Metrics

/// Publishes protocol-v1 events: numbers them, stamps them, signs them (HMAC-SHA256, optional),
/// sends each as one UDP datagram to every target, appends it to a size-rotated JSONL log and hands
/// it to the live subscribers (`subscribe`, the API's event stream).
///
/// Called from the RTP workers and the API; a lock keeps `seq` strictly increasing and the log and
/// every subscriber in order. Sends are non-blocking: a receiver that is down or slow never holds up
/// a leg, and a subscriber that does not keep up loses its oldest events instead.
public final class EventPublisher: @unchecked Sendable {
    // All mutable state is guarded by `lock`.
    private let lock = NSLock()
    private var sequence: Int64 = 0
    private let targets: [UDPEndpoint]
    private let signer: EventSigner?
    private let log: RotatingLog?
    private let logger: Logger
    private let socket: UDPSocket
    private let sent: Counter
    private let sendErrors: Counter
    private let logErrors: Counter
    /// 1 while writes to the event log fail (disk full, file gone), else 0.
    private let logFailing: Gauge
    private var failedLogWrites = 0
    private var subscribers: [Subscriber] = []
    private var nextSubscriberID = 0
    private let streamDropped: Counter
    private let streamClients: Gauge

    public init(
        targets: [UDPEndpoint], hmacKey: String?, logPath: String?, logMaxBytes: Int, logKeep: Int, logger: Logger,
        metrics: any MetricsFactory = MetricsSystem.factory
    ) throws {
        self.targets = targets
        signer = hmacKey.map { EventSigner(key: $0) }
        log = try logPath.map { try RotatingLog(path: $0, maxBytes: logMaxBytes, keep: logKeep) }
        self.logger = logger
        socket = try UDPSocket(nonBlocking: true)
        sent = Counter(label: "emotiontap_events_sent_total", factory: metrics)
        sendErrors = Counter(label: "emotiontap_event_send_errors_total", factory: metrics)
        logErrors = Counter(label: "emotiontap_event_log_errors_total", factory: metrics)
        logFailing = Gauge(label: "emotiontap_event_log_failing", factory: metrics)
        if log != nil { logFailing.record(0) }
        streamDropped = Counter(label: "emotiontap_event_stream_dropped_total", factory: metrics)
        streamClients = Gauge(label: "emotiontap_event_stream_clients", factory: metrics)
        streamClients.record(0)
    }

    /// Publishes one event about `leg` (nil for process-wide ones). Returns the datagram.
    @discardableResult
    public func publish(_ body: Event.Body, leg: LegIdentity?) -> String {
        lock.lock()
        defer { lock.unlock() }
        sequence += 1
        let event = Event(sequence: sequence, timestamp: EventTimestamp.now(), leg: leg, body: body)
        var text = event.serialized()
        if let signer { text = signer.sign(text) }
        if text.utf8.count > Event.maxDatagram {
            logger.warning(
                "event over the datagram limit",
                metadata: ["event.type": "\(event.type)", "bytes": "\(text.utf8.count)"])
        }
        for target in targets {
            // ECONNREFUSED (an earlier ICMP port unreachable) or EAGAIN: the event stays in the log.
            if !socket.send(text, to: target, flags: Int32(MSG_DONTWAIT)) { sendErrors.increment() }
        }
        if let log {
            do {
                try log.append(text)
                if failedLogWrites > 0 {
                    logger.notice(
                        "the event log is writable again",
                        metadata: ["log.path": "\(log.path)", "failed_writes": "\(failedLogWrites)"])
                    failedLogWrites = 0
                    logFailing.record(0)
                }
            } catch {
                logErrors.increment()
                // Warn once per outage (a full disk fails every write): the metrics carry the count.
                if failedLogWrites == 0 {
                    logger.warning(
                        """
                        cannot write the event log; events still go out over UDP, failed writes are counted in \
                        emotiontap_event_log_errors_total
                        """,
                        metadata: ["log.path": "\(log.path)", "error": "\(error)"])
                    logFailing.record(1)
                }
                failedLogWrites += 1
            }
        }
        if !subscribers.isEmpty { deliver(PublishedEvent(type: event.type, sequence: sequence, text: text), leg: leg) }
        sent.increment()
        return text
    }

    public func flush() {
        lock.lock()
        defer { lock.unlock() }
        try? log?.flush()
    }

    // MARK: Live subscribers

    private struct Subscriber {
        let id: Int
        let filter: EventFilter
        let continuation: AsyncStream<LiveEvent>.Continuation
    }

    /// Subscribes to every event published from now on that `filter` passes, in `seq` order. The
    /// stream keeps the newest `buffer` events a slow reader has not taken yet and drops older ones
    /// (counted in `emotiontap_event_stream_dropped_total`): `publish` never waits for a subscriber.
    /// Call `unsubscribe(id)` when done; it ends the stream.
    public func subscribe(
        _ filter: EventFilter = EventFilter(), buffer: Int = 2000
    ) -> (id: Int, events: AsyncStream<LiveEvent>) {
        let (events, continuation) = AsyncStream.makeStream(
            of: LiveEvent.self, bufferingPolicy: .bufferingNewest(max(1, buffer)))
        lock.lock()
        defer { lock.unlock() }
        nextSubscriberID += 1
        subscribers.append(Subscriber(id: nextSubscriberID, filter: filter, continuation: continuation))
        streamClients.record(subscribers.count)
        return (nextSubscriberID, events)
    }

    /// Ends subscriber `id`'s stream (after the events it still holds); unknown ids are ignored.
    public func unsubscribe(_ id: Int) {
        lock.lock()
        let index = subscribers.firstIndex { $0.id == id }
        let removed = index.map { subscribers.remove(at: $0) }
        streamClients.record(subscribers.count)
        lock.unlock()
        // Outside the lock: finishing runs the stream's termination, which may release it.
        removed?.continuation.finish()
    }

    /// Puts a `.keepAlive` in subscriber `id`'s stream, in order with its events (a reader with
    /// nothing to say shows it is alive; one that has gone finds out when it writes).
    public func keepAlive(_ id: Int) {
        lock.lock()
        defer { lock.unlock() }
        guard let s = subscribers.first(where: { $0.id == id }) else { return }
        if case .dropped = s.continuation.yield(.keepAlive) { streamDropped.increment() }
    }

    /// The number of live subscribers.
    public var subscriberCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return subscribers.count
    }

    /// Under `lock`, on the publishing thread: a filter check and a yield of the already-built text
    /// per subscriber, nothing that waits.
    private func deliver(_ event: PublishedEvent, leg: LegIdentity?) {
        for s in subscribers where s.filter.passes(type: event.type, callID: leg?.callID) {
            if case .dropped = s.continuation.yield(.event(event)) { streamDropped.increment() }
        }
    }
}

/// What a live subscriber's stream carries.
public enum LiveEvent: Sendable, Equatable {
    case event(PublishedEvent)
    /// Asked for with `EventPublisher.keepAlive(_:)`: nothing to send, show the reader is alive.
    case keepAlive
}

/// One published event as a live subscriber gets it: its type, its `seq` and the datagram's text.
public struct PublishedEvent: Sendable, Equatable {
    public let type: String
    public let sequence: Int64
    public let text: String

    public init(type: String, sequence: Int64, text: String) {
        self.type = type
        self.sequence = sequence
        self.text = text
    }
}

/// Which events a subscriber wants: nil or empty passes everything.
public struct EventFilter: Sendable, Equatable {
    /// Only events of this call (process-wide events such as `heartbeat` have none and are left out).
    public var callID: String?
    /// Only these event types (`emotion`, `state`, ...).
    public var types: Set<String>

    public init(callID: String? = nil, types: Set<String> = []) {
        self.callID = callID
        self.types = types
    }

    public func passes(type: String, callID: String?) -> Bool {
        (self.callID == nil || self.callID == callID) && (types.isEmpty || types.contains(type))
    }
}
