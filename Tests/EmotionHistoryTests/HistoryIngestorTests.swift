import EmotionHistory
import Foundation
import Logging
import Synchronization
import Testing

/// A store that is down for its first `failures` writes (unreachable, disk full), then works.
final class FlakyStore: HistoryStore {
    let inner: SQLiteHistoryStore
    let failuresLeft: Mutex<Int>
    let attempts = Mutex(0)
    var location: String { inner.location }

    init(_ inner: SQLiteHistoryStore, failures: Int) {
        self.inner = inner
        failuresLeft = Mutex(failures)
    }

    func migrate() async throws(HistoryError) { try await inner.migrate() }
    func schemaVersion() async throws(HistoryError) -> Int { try await inner.schemaVersion() }
    func position(instance: String) async throws(HistoryError) -> LogPosition? {
        try await inner.position(instance: instance)
    }
    func write(_ batch: HistoryBatch, position: LogPosition, instance: String) async throws(HistoryError) {
        attempts.withLock { $0 += 1 }
        let fail = failuresLeft.withLock { n -> Bool in
            defer { n -= 1 }
            return n > 0
        }
        if fail { throw HistoryError("store unreachable (test)") }
        try await inner.write(batch, position: position, instance: instance)
    }
    func closeOrphans(instance: String, startedBefore: String, at time: String) async throws(HistoryError) -> Int {
        try await inner.closeOrphans(instance: instance, startedBefore: startedBefore, at: time)
    }
    func prune(endedBefore cutoff: String) async throws(HistoryError) -> Int {
        try await inner.prune(endedBefore: cutoff)
    }
    func pruneTimelines(endedBefore cutoff: String) async throws(HistoryError) -> Int {
        try await inner.pruneTimelines(endedBefore: cutoff)
    }
    func legs(_ query: LegQuery) async throws(HistoryError) -> [LegRecord] { try await inner.legs(query) }
    func events(legID: String, types: [String]?) async throws(HistoryError) -> [StoredEvent] {
        try await inner.events(legID: legID, types: types)
    }
    func latestEvent(legID: String, type: String) async throws(HistoryError) -> StoredEvent? {
        try await inner.latestEvent(legID: legID, type: type)
    }
    func close() async { await inner.close() }
}

@Suite("history ingestor")
struct HistoryIngestorTests {
    /// Runs the ingestor until `done` holds (bounded), then stops it.
    func ingest(
        _ store: any HistoryStore, log: String, until done: @escaping @Sendable () async -> Bool
    ) async throws
        -> Bool
    {
        var options = HistoryIngestor.Options(instance: "t", logPath: log, logKeep: 3, retentionDays: nil)
        options.pollInterval = .milliseconds(20)
        options.firstRetryDelay = .milliseconds(20)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let ingestor = HistoryIngestor(store: store, options: options, logger: logger)
        let task = Task { await ingestor.run() }
        defer { task.cancel() }
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if await done() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test("a store that is down for a while gets every event once it is back; nothing is written twice")
    func outage() async throws {
        let dir = try Scratch()
        let log = dir.path("ev.jsonl")
        var lines = [HistoryFixtures.start(seq: 1)]
        for i in 0..<50 { lines.append(HistoryFixtures.emotion(seq: Int64(2 + i), at: Double(i + 1), upset: 0.5)) }
        lines.append(HistoryFixtures.end(seq: 52))
        try dir.append(lines, to: "ev.jsonl")
        let sqlite = try SQLiteHistoryStore(path: dir.path("h.sqlite"))
        try await sqlite.migrate()
        let flaky = FlakyStore(sqlite, failures: 3)
        let ok = try await ingest(flaky, log: log) {
            (try? await sqlite.events(legID: "leg-1", types: nil).count) == 52
        }
        #expect(ok, "all 52 events stored after the outage")
        #expect(flaky.attempts.withLock { $0 } >= 4, "three failed writes, then the good one")
        #expect(try await sqlite.legs(LegQuery()).first?.endReason == "bye")
    }

    @Test(
        "a restart resumes from the stored position: only the lines written since are added, and the earlier run's open legs are closed as lost"
    )
    func resume() async throws {
        let dir = try Scratch()
        let log = dir.path("ev.jsonl")
        try dir.append(
            [
                HistoryFixtures.start(seq: 1, leg: "first"), HistoryFixtures.end(seq: 2, leg: "first"),
                HistoryFixtures.start(seq: 3, leg: "crashed"),
            ], to: "ev.jsonl")
        let store = try SQLiteHistoryStore(path: dir.path("h.sqlite"))
        try await store.migrate()
        #expect(try await ingest(store, log: log) { (try? await store.legs(LegQuery()).count) == 2 })
        let stored = try #require(try await store.position(instance: "t"))
        // The process died with "crashed" open; the restarted one numbers its events from 1 again.
        try dir.append([HistoryFixtures.start(seq: 1, leg: "next", call: "call-2")], to: "ev.jsonl")
        #expect(
            try await ingest(store, log: log) {
                let legs = (try? await store.legs(LegQuery())) ?? []
                return legs.count == 3 && legs.first { $0.legID == "crashed" }?.endReason == "lost"
            })
        let legs = try await store.legs(LegQuery())
        #expect(legs.first { $0.legID == "first" }?.endReason == "bye")
        #expect(try await store.events(legID: "first", types: nil).count == 2)
        #expect(try await store.events(legID: "next", types: nil).count == 1)
        #expect(try #require(try await store.position(instance: "t")).offset > stored.offset)
    }
}
