import EmotionHistory
import EmotionTestSupport
import Foundation
import Logging
import Testing

@Suite(
    "PostgreSQL history store: lost connections and a server that stops answering", .serialized,
    .enabled(
        if: PostgresServer.available,
        "PostgreSQL is not installed (Debian package postgresql; scripts/install-deps.sh installs it)"))
struct PostgresReconnectTests {
    @Test("a connection the server dropped is replaced on the next call; a blocked call times out and clears")
    func recovers() async throws {
        let server = try PostgresServer()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let store = try PostgresHistoryStore(url: server.url, logger: logger, timeoutSeconds: 2)
        let other = try PostgresHistoryStore(url: server.url, logger: logger)
        try await store.migrate()

        // The server ends the store's session (as a restart or an administrator would): the next call
        // finds the connection dead and opens another.
        try await other.rawExecute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                + "WHERE application_name = 'emotiontap' AND pid <> pg_backend_pid()")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await store.schemaVersion() == HistorySchema.latestVersion)

        // A statement that waits on a lock another session holds: the caller gets an error after its
        // timeout, and so does the next call queued behind it, each within its own bound.
        try await other.rawExecute("SELECT pg_advisory_lock(99)")
        let started = ContinuousClock.now
        do {
            try await store.rawExecute("SELECT pg_advisory_lock(99)")
            Issue.record("a blocked statement returned")
        } catch {
            #expect(error.description.contains("no answer from PostgreSQL in 2 s"))
        }
        await #expect(throws: HistoryError.self) { _ = try await store.schemaVersion() }
        // Two 2 s bounds; the slack is for a busy machine (make test runs the black-box tests beside
        // these, and the timeout's wake-up waits for a free thread of the cooperative pool). Without the
        // bound both calls would wait until the lock is released below.
        #expect(ContinuousClock.now - started < .seconds(15))
        // Once the lock is free the blocked statement completes and the store answers again.
        try await other.rawExecute("SELECT pg_advisory_unlock(99)")
        #expect(try await store.schemaVersion() == HistorySchema.latestVersion)
        for s in [store, other] { await s.close() }
    }
}
