import Foundation
import GRDB

/// The embedded store: one SQLite file (GRDB), in WAL mode so `emotiontap report` reads while the
/// service writes.
public final class SQLiteHistoryStore: HistoryStore {
    public let location: String
    private let pool: DatabasePool

    /// Opens (or, unless `readOnly`, creates) the store at `path`. A file that is not an SQLite
    /// database is refused here, before anything is written to it.
    public init(path: String, readOnly: Bool = false) throws(HistoryError) {
        location = path
        let exists = FileManager.default.fileExists(atPath: path)
        if readOnly, !exists { throw HistoryError("no history store at \(path) (serve creates it; see history.store)") }
        if exists, let header = FileManager.default.contents(atPath: path)?.prefix(16), !header.isEmpty,
            header != Data("SQLite format 3\u{0}".utf8)
        {
            throw HistoryError(
                "\(path) is not an SQLite database (or is damaged): nothing was changed; move it aside or set "
                    + "history.store to another path")
        }
        var config = Configuration()
        config.readonly = readOnly
        config.label = "emotiontap-history"
        // A writer waits for a reader's lock instead of failing at once.
        config.busyMode = .timeout(5)
        do { pool = try DatabasePool(path: path, configuration: config) } catch {
            throw Self.problem(error, path)
        }
    }

    static func problem(_ error: any Error, _ path: String) -> HistoryError {
        if let e = error as? DatabaseError {
            switch e.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                return HistoryError(
                    "\(path) is not an SQLite database (or is damaged): nothing was changed; move it aside")
            case .SQLITE_FULL: return HistoryError("\(path): the disk is full")
            case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM:
                return HistoryError("\(path): cannot write here (\(e.message ?? "permission"))")
            default: return HistoryError("\(path): \(e.message ?? "\(e)")")
            }
        }
        return HistoryError("\(path): \(error)")
    }

    private func read<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(HistoryError) -> T {
        do { return try await pool.read(body) } catch { throw Self.problem(error, location) }
    }

    private func write<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(HistoryError) -> T
    {
        do { return try await pool.write(body) } catch { throw Self.problem(error, location) }
    }

    public func schemaVersion() async throws(HistoryError) -> Int {
        try await read { db in
            guard try db.tableExists("schema_migrations") else { return 0 }
            return try Int.fetchOne(db, sql: "SELECT MAX(version) FROM schema_migrations") ?? 0
        }
    }

    public func migrate() async throws(HistoryError) {
        let current = try await schemaVersion()
        guard current <= HistorySchema.latestVersion else {
            throw HistorySchemaCheck.newer(current, location: location)
        }
        let now = HistoryClock.now()
        try await write { db in
            try db.execute(sql: HistorySchema.migrationsTable(.sqlite))
            for m in HistorySchema.migrations where m.version > current {
                for statement in m.statements(.sqlite) { try db.execute(sql: statement) }
                try db.execute(
                    sql: "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    arguments: [m.version, m.name, now])
            }
        }
    }

    public func position(instance: String) async throws(HistoryError) -> LogPosition? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT inode, byte_offset FROM log_positions WHERE instance = ?", arguments: [instance]
            ).map { LogPosition(inode: UInt64(bitPattern: $0["inode"]), offset: $0["byte_offset"]) }
        }
    }

    public func write(_ batch: HistoryBatch, position: LogPosition, instance: String) async throws(HistoryError) {
        let now = HistoryClock.now()
        try await write { db in
            for id in batch.legOrder {
                guard let u = batch.legs[id] else { continue }
                let r = u.record
                try db.cachedStatement(sql: HistorySQL.upsertLeg).execute(arguments: [
                    r.legID, r.callID, r.role, instance, r.agentID, HistorySQL.tagsJSON(r.tags), r.startedAt,
                ])
                if u.started {
                    try db.cachedStatement(sql: HistorySQL.legStarted).execute(arguments: [
                        r.codec, r.source, r.recordingSession, r.participant, r.legID,
                    ])
                }
                if u.ended {
                    try db.cachedStatement(sql: HistorySQL.legEnded).execute(arguments: [
                        r.endedAt, r.endReason, r.durationSeconds, r.speechSeconds, r.upsetFraction, r.peakUpset,
                        r.startUpset, r.endUpset, r.endedCalmer.map { $0 ? 1 : 0 }, r.escalations, u.summary,
                        r.legID,
                    ])
                }
            }
            let insert = try db.cachedStatement(sql: HistorySQL.insertEvent)
            for e in batch.events {
                try insert.execute(arguments: [e.legID, e.sequence, e.timestamp, e.type, e.body])
            }
            try db.cachedStatement(sql: HistorySQL.upsertPosition).execute(arguments: [
                instance, Int64(bitPattern: position.inode), position.offset, now,
            ])
        }
    }

    public func closeOrphans(
        instance: String, startedBefore: String, at time: String
    ) async throws(HistoryError)
        -> Int
    {
        try await write { db in
            try db.execute(sql: HistorySQL.closeOrphans, arguments: [time, instance, startedBefore])
            return db.changesCount
        }
    }

    public func prune(endedBefore cutoff: String) async throws(HistoryError) -> Int {
        try await write { db in
            try db.execute(sql: HistorySQL.pruneEvents, arguments: [cutoff])
            try db.execute(sql: HistorySQL.pruneLegs, arguments: [cutoff])
            return db.changesCount
        }
    }

    public func pruneTimelines(endedBefore cutoff: String) async throws(HistoryError) -> Int {
        try await write { db in
            try db.execute(sql: HistorySQL.pruneEvents, arguments: [cutoff])
            return db.changesCount
        }
    }

    public func legs(_ query: LegQuery) async throws(HistoryError) -> [LegRecord] {
        let (sql, values) = HistorySQL.selectLegs(query, placeholder: { _ in "?" })
        return try await read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(values.map(\.databaseValue))).map(
                Self.record)
        }
    }

    public func events(legID: String, types: [String]?) async throws(HistoryError) -> [StoredEvent] {
        let (sql, values) = HistorySQL.selectEvents(legID: legID, types: types, placeholder: { _ in "?" })
        return try await read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(values.map(\.databaseValue))).map {
                StoredEvent(
                    legID: $0["leg_id"], sequence: $0["seq"], timestamp: $0["ts"], type: $0["type"], body: $0["body"])
            }
        }
    }

    public func latestEvent(legID: String, type: String) async throws(HistoryError) -> StoredEvent? {
        try await read { db in
            try Row.fetchOne(db, sql: HistorySQL.selectLatest(placeholder: { _ in "?" }), arguments: [legID, type]).map
            {
                StoredEvent(
                    legID: $0["leg_id"], sequence: $0["seq"], timestamp: $0["ts"], type: $0["type"], body: $0["body"])
            }
        }
    }

    public func close() async { try? pool.close() }

    /// One statement as is: for tests that set up a store as another release left it.
    package func rawExecute(_ sql: String) async throws(HistoryError) {
        try await write { db in try db.execute(sql: sql) }
    }

    static func record(_ row: Row) -> LegRecord {
        var r = LegRecord(
            legID: row["leg_id"], callID: row["call_id"], role: row["role"], instance: row["instance"],
            startedAt: row["started_at"])
        r.agentID = row["agent_id"]
        r.tags = HistorySQL.tags(fromJSON: row["tags"])
        r.codec = row["codec"]
        r.source = row["source"]
        r.recordingSession = row["recording_session"]
        r.participant = row["participant"]
        r.endedAt = row["ended_at"]
        r.endReason = row["end_reason"]
        r.durationSeconds = row["duration_s"]
        r.speechSeconds = row["speech_s"]
        r.upsetFraction = row["upset_fraction"]
        r.peakUpset = row["peak_upset"]
        r.startUpset = row["start_upset"]
        r.endUpset = row["end_upset"]
        r.endedCalmer = (row["ended_calmer"] as Int?).map { $0 != 0 }
        r.escalations = row["escalations"]
        return r
    }
}

/// A value for a query's placeholders, on either backend.
public enum SQLValue: Sendable, Equatable {
    case text(String)
    case int(Int64)

    var databaseValue: DatabaseValue {
        switch self {
        case .text(let s): s.databaseValue
        case .int(let i): i.databaseValue
        }
    }
}
