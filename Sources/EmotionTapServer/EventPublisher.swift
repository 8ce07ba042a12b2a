import EmotionMedia
import EmotionProtocol
import EmotionUDP
import Foundation
import Logging
import Metrics

/// Publishes protocol-v1 events: numbers them, stamps them, signs them (HMAC-SHA256, optional),
/// sends each as one UDP datagram to every target and appends it to a size-rotated JSONL log.
///
/// Called from the RTP workers and the API; a lock keeps `seq` strictly increasing and the log in
/// order. Sends are non-blocking: a receiver that is down or slow never holds up a leg.
public final class EventPublisher: @unchecked Sendable {
    // All mutable state is guarded by `lock`.
    private let lock = NSLock()
    private var sequence: Int64 = 0
    private let targets: [UDPEndpoint]
    private let signer: EventSigner?
    private let log: RotatingLog?
    private let logger: Logger
    private let socket: UDPSocket
    private let formatter: ISO8601DateFormatter
    private let sent: Counter
    private let sendErrors: Counter
    private let logErrors: Counter
    /// 1 while writes to the event log fail (disk full, file gone), else 0.
    private let logFailing: Gauge
    private var failedLogWrites = 0

    public init(
        targets: [UDPEndpoint], hmacKey: String?, logPath: String?, logMaxBytes: Int, logKeep: Int, logger: Logger,
        metrics: any MetricsFactory = MetricsSystem.factory
    ) throws {
        self.targets = targets
        signer = hmacKey.map { EventSigner(key: $0) }
        log = try logPath.map { try RotatingLog(path: $0, maxBytes: logMaxBytes, keep: logKeep) }
        self.logger = logger
        socket = try UDPSocket(nonBlocking: true)
        formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        sent = Counter(label: "emotiontap_events_sent_total", factory: metrics)
        sendErrors = Counter(label: "emotiontap_event_send_errors_total", factory: metrics)
        logErrors = Counter(label: "emotiontap_event_log_errors_total", factory: metrics)
        logFailing = Gauge(label: "emotiontap_event_log_failing", factory: metrics)
        if log != nil { logFailing.record(0) }
    }

    /// Publishes one event about `leg` (nil for process-wide ones). Returns the datagram.
    @discardableResult
    public func publish(_ body: Event.Body, leg: LegIdentity?) -> String {
        lock.lock()
        defer { lock.unlock() }
        sequence += 1
        let event = Event(sequence: sequence, timestamp: formatter.string(from: Date()), leg: leg, body: body)
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
        sent.increment()
        return text
    }

    public func flush() {
        lock.lock()
        defer { lock.unlock() }
        try? log?.flush()
    }
}
