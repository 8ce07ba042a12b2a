import EmotionHistory
import EmotionTestSupport
import Foundation
import Logging
import Testing

@Suite(
    "PostgreSQL history store", .serialized,
    .enabled(
        if: PostgresServer.available,
        "PostgreSQL is not installed (Debian package postgresql; scripts/install-deps.sh installs it)"))
struct PostgresHistoryStoreTests {
    func batch(_ lines: [String]) -> HistoryBatch {
        var b = HistoryBatch()
        for l in lines { b.add(line: Substring(l)) }
        return b
    }

    @Test("the same schema and writes as SQLite on a real server; two instances share it; a newer schema is refused")
    func sharedStore() async throws {
        let server = try PostgresServer()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let a = try PostgresHistoryStore(url: server.url, logger: logger)
        let b = try PostgresHistoryStore(url: server.url, logger: logger)
        // Both instances migrate at once: one does it, the other finds it done.
        async let ma: Void = a.migrate()
        async let mb: Void = b.migrate()
        _ = try await (ma, mb)
        #expect(try await a.schemaVersion() == HistorySchema.latestVersion)
        let first = batch([
            HistoryFixtures.start(seq: 1, leg: "leg-a"),
            HistoryFixtures.emotion(seq: 2, leg: "leg-a", at: 1, upset: 0.8),
            HistoryFixtures.end(seq: 3, leg: "leg-a"),
        ])
        try await a.write(first, position: LogPosition(inode: 9, offset: 300), instance: "a")
        try await a.write(first, position: LogPosition(inode: 9, offset: 300), instance: "a")
        try await b.write(
            batch([HistoryFixtures.start(seq: 1, leg: "leg-b", agent: "agent-1")]),
            position: LogPosition(inode: 4, offset: 10), instance: "b")
        let legs = try await b.legs(LegQuery(callID: "call-1"))
        #expect(legs.map(\.legID).sorted() == ["leg-a", "leg-b"])
        #expect(Set(legs.map(\.instance)) == ["a", "b"])
        let legA = try #require(legs.first { $0.legID == "leg-a" })
        #expect(
            legA.endReason == "bye" && legA.endedCalmer == true && legA.upsetFraction == 0.25
                && legA.tags == ["queue": "q1"])
        #expect(try await b.events(legID: "leg-a", types: nil).map(\.sequence) == [1, 2, 3])
        #expect(try await a.position(instance: "a") == LogPosition(inode: 9, offset: 300))
        #expect(
            try await a.closeOrphans(
                instance: "b", startedBefore: "2027-01-01T00:00:00.000Z", at: "2026-12-01T12:00:00.000Z") == 1)
        #expect(try await a.prune(endedBefore: "2026-12-01T10:30:00.000Z") == 1)
        #expect(try await a.legs(LegQuery()).map(\.legID) == ["leg-b"])

        let report = try await HistoryReports.agent("agent-1", since: nil, until: nil, in: a)
        #expect(report.calls.count == 1)

        // A newer release migrated it further.
        let c = try PostgresHistoryStore(url: server.url, logger: logger)
        try await c.rawExecute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (42, 'future', 'x')")
        await #expect(throws: HistoryError.self) { try await c.migrate() }
        do { try await c.migrate() } catch { #expect(error.description.contains("schema version 42")) }
        for s in [a, b, c] { await s.close() }
    }

    @Test("an unreachable server is an error that names it, not a hang")
    func unreachable() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let store = try PostgresHistoryStore(
            url: "postgres://postgres@127.0.0.1:9/none", logger: logger, timeoutSeconds: 2)
        let started = ContinuousClock.now
        await #expect(throws: HistoryError.self) { _ = try await store.position(instance: "x") }
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(throws: HistoryError.self) { try PostgresHistoryStore(url: "mysql://x@y/z", logger: logger) }
        await store.close()
    }
}
