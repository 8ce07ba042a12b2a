import EmotionHistory
import Foundation
import Testing

@Suite("SQLite history store")
struct SQLiteHistoryStoreTests {
    func batch(_ lines: [String]) -> HistoryBatch {
        var b = HistoryBatch()
        for l in lines { b.add(line: Substring(l)) }
        return b
    }

    @Test("a leg's events and leg.end summary are stored with its agent; a replayed batch adds nothing")
    func writeAndReplay() async throws {
        let dir = try Scratch()
        let store = try SQLiteHistoryStore(path: dir.path("h.sqlite"))
        try await store.migrate()
        try await store.migrate()
        #expect(try await store.schemaVersion() == HistorySchema.latestVersion)
        let lines = [
            HistoryFixtures.start(seq: 1), HistoryFixtures.heartbeat(seq: 2),
            HistoryFixtures.emotion(seq: 3, at: 1, upset: 0.9), HistoryFixtures.emotion(seq: 4, at: 2, upset: nil),
            HistoryFixtures.end(seq: 5), "not json",
        ]
        let b = batch(lines)
        #expect(b.rejected == 1 && b.events.count == 4)
        try await store.write(b, position: LogPosition(inode: 5, offset: 100), instance: "a")
        try await store.write(b, position: LogPosition(inode: 5, offset: 100), instance: "a")
        #expect(try await store.position(instance: "a") == LogPosition(inode: 5, offset: 100))
        #expect(try await store.position(instance: "b") == nil)
        let legs = try await store.legs(LegQuery(callID: "call-1"))
        #expect(legs.count == 1)
        let leg = try #require(legs.first)
        #expect(leg.agentID == "agent-1" && leg.tags == ["queue": "q1"] && leg.codec == "pcmu")
        #expect(leg.endReason == "bye" && leg.upsetFraction == 0.25 && leg.endedCalmer == true && leg.escalations == 1)
        #expect(leg.instance == "a")
        #expect(try await store.events(legID: "leg-1", types: nil).map(\.sequence) == [1, 3, 4, 5])
        #expect(try await store.events(legID: "leg-1", types: ["emotion"]).count == 2)
        #expect(try await store.legs(LegQuery(agentID: "agent-1", since: "2026-12-02T00:00:00.000Z")).isEmpty)
    }

    @Test("legs an instance left open are closed as lost; retention prunes ended legs and their events")
    func orphansAndRetention() async throws {
        let dir = try Scratch()
        let store = try SQLiteHistoryStore(path: dir.path("h.sqlite"))
        try await store.migrate()
        try await store.write(
            batch([
                HistoryFixtures.start(seq: 1, leg: "open"), HistoryFixtures.start(seq: 2, leg: "done"),
                HistoryFixtures.end(seq: 3, leg: "done"),
            ]),
            position: LogPosition(inode: 1, offset: 1), instance: "a")
        #expect(try await store.closeOrphans(instance: "b", startedBefore: "2027-01-01T00:00:00.000Z", at: "x") == 0)
        #expect(
            try await store.closeOrphans(
                instance: "a", startedBefore: "2027-01-01T00:00:00.000Z", at: "2026-12-01T11:00:00.000Z") == 1)
        let open = try #require(try await store.legs(LegQuery()).first { $0.legID == "open" })
        #expect(open.endReason == "lost")
        // Timelines first: the ended leg keeps its row and summary, loses its events.
        #expect(try await store.pruneTimelines(endedBefore: "2026-12-01T10:30:00.000Z") == 2)
        #expect(try await store.events(legID: "done", types: nil).isEmpty)
        #expect(try await store.legs(LegQuery()).first { $0.legID == "done" }?.endReason == "bye")
        #expect(try await store.events(legID: "open", types: nil).count == 1, "a leg still open keeps its events")
        #expect(try await store.prune(endedBefore: "2026-12-01T10:30:00.000Z") == 1)
        #expect(try await store.legs(LegQuery()).map(\.legID) == ["open"])
        #expect(try await store.events(legID: "done", types: nil).isEmpty)
    }

    @Test("a file that is not SQLite, or a schema from a newer release, is refused and left as it was")
    func refusals() async throws {
        let dir = try Scratch()
        let junk = dir.path("junk.sqlite")
        try Data("this is not a database at all, just text".utf8).write(to: URL(fileURLWithPath: junk))
        let before = try Data(contentsOf: URL(fileURLWithPath: junk))
        #expect(throws: HistoryError.self) { try SQLiteHistoryStore(path: junk) }
        do { _ = try SQLiteHistoryStore(path: junk) } catch {
            #expect(
                error.description.contains("not an SQLite database")
                    && error.description.contains("nothing was changed"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: junk)) == before)

        let newer = dir.path("newer.sqlite")
        let store = try SQLiteHistoryStore(path: newer)
        try await store.migrate()
        try await store.write(
            batch([HistoryFixtures.start(seq: 1)]), position: LogPosition(inode: 1, offset: 1), instance: "a")
        await store.close()
        // A newer release added migration 99.
        let raw = try SQLiteHistoryStore(path: newer)
        try await raw.rawExecute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'x')")
        await raw.close()
        let reopened = try SQLiteHistoryStore(path: newer)
        await #expect(throws: HistoryError.self) { try await reopened.migrate() }
        do { try await reopened.migrate() } catch {
            #expect(
                error.description.contains("schema version 99") && error.description.contains("Nothing was changed"))
        }
        #expect(try await reopened.legs(LegQuery()).count == 1, "the data is still there")
        #expect(throws: HistoryError.self) { try SQLiteHistoryStore(path: dir.path("missing.sqlite"), readOnly: true) }
    }
}
