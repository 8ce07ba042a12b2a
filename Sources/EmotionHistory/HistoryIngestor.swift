import Foundation
import Logging
import Metrics

/// Moves the event log into the store, off the per-packet path: the publisher only appends to the
/// log (as before); this task reads the log from the position the store last took, in batches, and
/// writes each batch and its end position in one transaction. A store that is full, locked or
/// unreachable holds nothing up: the batch is kept and retried with backoff, the log keeps growing
/// (the backlog gauge says by how much), and a restart replays from the stored position, so no
/// event that reached the log is lost.
public final class HistoryIngestor: Sendable {
    public struct Options: Sendable {
        public var instance: String
        public var logPath: String
        public var logKeep: Int
        /// Ended legs older than this are pruned (nil: kept for ever).
        public var retentionDays: Int?
        /// Their events (the per-window timelines) go sooner when this is set: the legs and their
        /// summaries stay for the reports by agent and day.
        public var timelineRetentionDays: Int?
        public var batchLines = 2000
        /// How long to wait when the log has nothing new.
        public var pollInterval: Duration = .milliseconds(200)
        /// The first wait after a failed read or write of the store; it doubles with each failure in a
        /// row, to at most 30 s.
        public var firstRetryDelay: Duration = .milliseconds(500)

        public init(instance: String, logPath: String, logKeep: Int, retentionDays: Int?) {
            self.instance = instance
            self.logPath = logPath
            self.logKeep = logKeep
            self.retentionDays = retentionDays
        }
    }

    public let store: any HistoryStore
    public let options: Options
    private let logger: Logger
    private let stored: Counter
    private let writeErrors: Counter
    private let rejected: Counter
    private let gaps: Counter
    private let pruned: Counter
    private let backlog: Gauge
    private let failing: Gauge

    public init(
        store: any HistoryStore, options: Options, logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        self.store = store
        self.options = options
        self.logger = logger
        stored = Counter(label: "emotiontap_history_events_stored_total", factory: metrics)
        writeErrors = Counter(label: "emotiontap_history_write_errors_total", factory: metrics)
        rejected = Counter(label: "emotiontap_history_lines_rejected_total", factory: metrics)
        gaps = Counter(label: "emotiontap_history_log_gaps_total", factory: metrics)
        pruned = Counter(label: "emotiontap_history_legs_pruned_total", factory: metrics)
        backlog = Gauge(label: "emotiontap_history_backlog_bytes", factory: metrics)
        failing = Gauge(label: "emotiontap_history_store_failing", factory: metrics)
    }

    /// Runs until cancelled. `drainUntil`, once set (shutdown), makes it write what the log holds
    /// and return, giving up at that time.
    public func run(stopRequested: @Sendable () -> Bool = { false }) async {
        var attempt = 0
        var position: LogPosition?
        // The stored position, retried while the store is unreachable.
        while !Task.isCancelled {
            do {
                position = try await store.position(instance: options.instance)
                break
            } catch {
                noteFailure(error, attempt: attempt)
                attempt += 1
                if stopRequested() { return }
                try? await Task.sleep(for: Self.backoff(failures: attempt, first: options.firstRetryDelay))
            }
        }
        let tailer = EventLogTailer(path: options.logPath, keep: options.logKeep, from: position)
        if tailer.gaps > 0 {
            gaps.increment(by: Int64(tailer.gaps))
            logger.warning(
                "the event log rotated past the stored position before it was stored: some events may be missing",
                metadata: ["log.path": "\(options.logPath)", "stored": "\(position.map(\.description) ?? "none")"])
        }
        var pending: (HistoryBatch, LogPosition)?
        // Legs this instance left open in an earlier run are closed once the log is caught up.
        let runStarted = HistoryClock.now()
        var orphansClosed = false
        var lastPrune = ContinuousClock.now - .seconds(3600)
        attempt = 0
        while !Task.isCancelled {
            if pending == nil {
                var batch = HistoryBatch()
                for line in tailer.read(maxLines: options.batchLines) { batch.add(line: line) }
                if batch.rejected > 0 { rejected.increment(by: Int64(batch.rejected)) }
                if tailer.position != position { pending = (batch, tailer.position) }
            }
            backlog.record(Int(tailer.backlogBytes))
            guard let (batch, end) = pending else {
                if !orphansClosed {
                    orphansClosed = await closeOrphans(startedBefore: runStarted)
                }
                if stopRequested() { return }
                await pruneIfDue(&lastPrune)
                try? await Task.sleep(for: options.pollInterval)
                continue
            }
            do {
                try await store.write(batch, position: end, instance: options.instance)
                stored.increment(by: Int64(batch.events.count))
                if attempt > 0 {
                    logger.notice("history store is writable again", metadata: ["store": "\(store.location)"])
                    failing.record(0)
                }
                attempt = 0
                position = end
                pending = nil
            } catch {
                writeErrors.increment()
                noteFailure(error, attempt: attempt)
                attempt += 1
                if stopRequested() { return }
                try? await Task.sleep(for: Self.backoff(failures: attempt, first: options.firstRetryDelay))
            }
        }
    }

    private func noteFailure(_ error: HistoryError, attempt: Int) {
        failing.record(1)
        // Once per outage at warning level; the counter carries the rest.
        if attempt == 0 {
            logger.warning(
                "history store write failed; events stay in the event log and are stored when it is back",
                metadata: ["store": "\(store.location)", "error": "\(error)"])
        } else {
            logger.debug("history store still failing", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
        }
    }

    private func closeOrphans(startedBefore: String) async -> Bool {
        do {
            let n = try await store.closeOrphans(
                instance: options.instance, startedBefore: startedBefore, at: HistoryClock.now())
            if n > 0 {
                logger.notice(
                    "legs left open by an earlier run (it stopped without ending them) are closed as lost",
                    metadata: ["legs": "\(n)", "instance": "\(options.instance)"])
            }
            return true
        } catch {
            return false
        }
    }

    private func pruneIfDue(_ last: inout ContinuousClock.Instant) async {
        guard options.retentionDays != nil || options.timelineRetentionDays != nil,
            ContinuousClock.now - last >= .seconds(3600)
        else { return }
        last = ContinuousClock.now
        if let days = options.timelineRetentionDays {
            let cutoff = HistoryClock.string(from: Date().addingTimeInterval(-Double(days) * 86400))
            do {
                let n = try await store.pruneTimelines(endedBefore: cutoff)
                if n > 0 {
                    logger.info("history timelines pruned", metadata: ["events": "\(n)", "ended_before": "\(cutoff)"])
                }
            } catch {
                logger.warning("history timeline prune failed", metadata: ["error": "\(error)"])
            }
        }
        guard let days = options.retentionDays else { return }
        let cutoff = HistoryClock.string(from: Date().addingTimeInterval(-Double(days) * 86400))
        do {
            let n = try await store.prune(endedBefore: cutoff)
            if n > 0 {
                pruned.increment(by: Int64(n))
                logger.info("history pruned", metadata: ["legs": "\(n)", "ended_before": "\(cutoff)"])
            }
        } catch {
            logger.warning("history prune failed", metadata: ["error": "\(error)"])
        }
    }

    /// The wait after `failures` failures in a row (1 or more): `first`, doubled for each one after the
    /// first, at most 30 s.
    static func backoff(failures: Int, first: Duration) -> Duration {
        min(.seconds(30), first * (1 << min(max(0, failures - 1), 16)))
    }
}
