import Foundation
import Logging
import NIOSSL
import PostgresNIO

/// The shared store: several instances write their legs into one PostgreSQL database (postgres-nio's
/// pooled client), each under its own instance name, and any of them can answer for a call whose
/// legs another holds. Same schema and statements as SQLite (`HistorySchema`, `HistorySQL`).
public final class PostgresHistoryStore: HistoryStore {
    public let location: String
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger

    /// `url`: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require].
    /// How long one operation may wait for the server.
    public let timeoutSeconds: Double

    public init(url: String, logger: Logger, timeoutSeconds: Double = 15) throws(HistoryError) {
        self.timeoutSeconds = timeoutSeconds
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(),
            scheme == "postgres" || scheme == "postgresql", let host = parts.host, !host.isEmpty
        else {
            throw HistoryError("\(url) is not a PostgreSQL URL: postgres://USER@HOST[:PORT]/DATABASE")
        }
        let user = parts.user ?? "postgres"
        let database = parts.path.hasPrefix("/") ? String(parts.path.dropFirst()) : parts.path
        let sslmode = parts.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        var display = parts
        display.password = nil
        location = display.string ?? "postgres://\(host)"
        let tls: PostgresClient.Configuration.TLS
        switch sslmode {
        case "disable": tls = .disable
        case "require": tls = .require(.makeClientConfiguration())
        default: throw HistoryError("\(location): sslmode must be disable or require")
        }
        var config = PostgresClient.Configuration(
            host: host, port: parts.port ?? 5432, username: user, password: parts.password,
            database: database.isEmpty ? user : database, tls: tls)
        config.options.maximumConnections = 4
        config.options.connectTimeout = .seconds(5)
        self.logger = logger
        let client = PostgresClient(configuration: config, backgroundLogger: logger)
        self.client = client
        runner = Task { await client.run() }
    }

    deinit { runner.cancel() }

    public func close() async { runner.cancel() }

    /// `?` placeholders (as HistorySQL writes them) as `$1`, `$2`...
    static func numbered(_ sql: String) -> String {
        var out = ""
        var n = 0
        for c in sql {
            if c == "?" {
                n += 1
                out += "$\(n)"
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Runs `body`, giving up after `seconds`: postgres-nio's pool keeps retrying an unreachable server
    /// for as long as a request waits, and the ingestor would rather retry itself, with its own backoff.
    private func bounded<T: Sendable>(
        _ seconds: Double = 15, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw HistoryError(
                    "\(location): no answer from PostgreSQL in \(Int(seconds)) s (is it running and reachable?)")
            }
            return value
        }
    }

    /// `body` bounded in time, its errors as `HistoryError`s that name the store.
    private func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws(HistoryError) -> T {
        do { return try await bounded(timeoutSeconds, body) } catch { throw problem(error) }
    }

    private func problem(_ error: any Error) -> HistoryError {
        if let e = error as? HistoryError { return e }
        if let p = error as? PSQLError {
            if let message = p.serverInfo?[.message] {
                return HistoryError("\(location): \(message)")
            }
            return HistoryError("\(location): cannot reach PostgreSQL (\(p.code))")
        }
        return HistoryError("\(location): \(error)")
    }

    /// A statement with `?` placeholders and its values (nil as NULL).
    static func query(_ sql: String, _ values: [(any PostgresThrowingDynamicTypeEncodable)?]) throws -> PostgresQuery {
        var binds = PostgresBindings(capacity: values.count)
        for v in values {
            if let v { try binds.append(v) } else { binds.appendNull() }
        }
        return PostgresQuery(unsafeSQL: numbered(sql), binds: binds)
    }

    public func schemaVersion() async throws(HistoryError) -> Int {
        return try await run { [self] in
            let exists = try await client.query("SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger)
            for try await (present) in exists.decode(Bool.self) where !present { return 0 }
            let rows = try await client.query("SELECT MAX(version) FROM schema_migrations", logger: logger)
            for try await (version) in rows.decode(Int?.self) { return version ?? 0 }
            return 0
        }
    }

    public func migrate() async throws(HistoryError) {
        let now = HistoryClock.now()
        return try await run { [self] in
            try await client.withTransaction(logger: logger) { db in
                // Instances starting together: one migrates, the others wait and then find it done.
                try await db.query("SELECT pg_advisory_xact_lock(7140147)", logger: logger)
                try await db.query(PostgresQuery(unsafeSQL: HistorySchema.migrationsTable(.postgres)), logger: logger)
                var current = 0
                for try await (v) in try await db.query("SELECT MAX(version) FROM schema_migrations", logger: logger)
                    .decode(Int?.self)
                {
                    current = v ?? 0
                }
                guard current <= HistorySchema.latestVersion else {
                    throw HistorySchemaCheck.newer(current, location: location)
                }
                for m in HistorySchema.migrations where m.version > current {
                    for statement in m.statements(.postgres) {
                        try await db.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await db.query(
                        try Self.query(
                            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                            [m.version, m.name, now]), logger: logger)
                }
            }
        }
    }

    public func position(instance: String) async throws(HistoryError) -> LogPosition? {
        return try await run { [self] in
            let rows = try await client.query(
                try Self.query("SELECT inode, byte_offset FROM log_positions WHERE instance = ?", [instance]),
                logger: logger)
            for try await (inode, offset) in rows.decode((Int64, Int64).self) {
                return LogPosition(inode: UInt64(bitPattern: inode), offset: offset)
            }
            return nil
        }
    }

    public func write(_ batch: HistoryBatch, position: LogPosition, instance: String) async throws(HistoryError) {
        let now = HistoryClock.now()
        return try await run { [self] in
            try await client.withTransaction(logger: logger) { db in
                for id in batch.legOrder {
                    guard let u = batch.legs[id] else { continue }
                    let r = u.record
                    try await db.query(
                        try Self.query(
                            HistorySQL.upsertLeg,
                            [r.legID, r.callID, r.role, instance, r.agentID, HistorySQL.tagsJSON(r.tags), r.startedAt]),
                        logger: logger)
                    if u.started {
                        try await db.query(
                            try Self.query(
                                HistorySQL.legStarted, [r.codec, r.source, r.recordingSession, r.participant, r.legID]),
                            logger: logger)
                    }
                    if u.ended {
                        let calmer: Int? = r.endedCalmer.map { $0 ? 1 : 0 }
                        try await db.query(
                            try Self.query(
                                HistorySQL.legEnded,
                                [
                                    r.endedAt, r.endReason, r.durationSeconds, r.speechSeconds, r.upsetFraction,
                                    r.peakUpset, r.startUpset, r.endUpset, calmer, r.escalations, u.summary, r.legID,
                                ]), logger: logger)
                    }
                }
                // The events in statements of up to 200 rows each.
                var start = 0
                while start < batch.events.count {
                    let slice = batch.events[start..<min(batch.events.count, start + 200)]
                    var values: [(any PostgresThrowingDynamicTypeEncodable)?] = []
                    var rows: [String] = []
                    for e in slice {
                        values += [e.legID, e.sequence, e.timestamp, e.type, e.body]
                        rows.append("(?, ?, ?, ?, ?)")
                    }
                    try await db.query(
                        try Self.query(
                            "INSERT INTO events (leg_id, seq, ts, type, body) VALUES " + rows.joined(separator: ", ")
                                + " ON CONFLICT (leg_id, seq) DO NOTHING", values), logger: logger)
                    start += slice.count
                }
                try await db.query(
                    try Self.query(
                        HistorySQL.upsertPosition, [instance, Int64(bitPattern: position.inode), position.offset, now]),
                    logger: logger)
            }
        }
    }

    private func execute(
        _ sql: String, _ values: [(any PostgresThrowingDynamicTypeEncodable)?]
    ) async throws(HistoryError)
        -> Int
    {
        let statement: PostgresQuery
        do { statement = try Self.query(sql + " RETURNING 1", values) } catch { throw problem(error) }
        return try await run { [self] in
            var count = 0
            try await client.withConnection { db in
                let result = try await db.query(statement, logger: logger)
                for try await _ in result { count += 1 }
            }
            return count
        }
    }

    public func closeOrphans(
        instance: String, startedBefore: String, at time: String
    ) async throws(HistoryError)
        -> Int
    {
        try await execute(HistorySQL.closeOrphans, [time, instance, startedBefore])
    }

    public func prune(endedBefore cutoff: String) async throws(HistoryError) -> Int {
        _ = try await execute(HistorySQL.pruneEvents, [cutoff])
        return try await execute(HistorySQL.pruneLegs, [cutoff])
    }

    public func pruneTimelines(endedBefore cutoff: String) async throws(HistoryError) -> Int {
        try await execute(HistorySQL.pruneEvents, [cutoff])
    }

    public func legs(_ query: LegQuery) async throws(HistoryError) -> [LegRecord] {
        let (sql, values) = HistorySQL.selectLegs(query, placeholder: { "$\($0)" })
        return try await run { [self] in
            var binds = PostgresBindings()
            for v in values {
                switch v {
                case .text(let s): binds.append(s)
                case .int(let i): binds.append(i)
                }
            }
            var out: [LegRecord] = []
            for try await row in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
                out.append(try Self.record(row.makeRandomAccess()))
            }
            return out
        }
    }

    public func events(legID: String, types: [String]?) async throws(HistoryError) -> [StoredEvent] {
        let (sql, values) = HistorySQL.selectEvents(legID: legID, types: types, placeholder: { "$\($0)" })
        return try await run { [self] in
            var binds = PostgresBindings()
            for case .text(let s) in values { binds.append(s) }
            var out: [StoredEvent] = []
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            for try await (leg, seq, ts, type, body) in rows.decode((String, Int64, String, String, String).self) {
                out.append(StoredEvent(legID: leg, sequence: seq, timestamp: ts, type: type, body: body))
            }
            return out
        }
    }

    public func latestEvent(legID: String, type: String) async throws(HistoryError) -> StoredEvent? {
        let sql = HistorySQL.selectLatest(placeholder: { "$\($0)" })
        return try await run { [self] in
            var binds = PostgresBindings()
            binds.append(legID)
            binds.append(type)
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            for try await (leg, seq, ts, type, body) in rows.decode((String, Int64, String, String, String).self) {
                return StoredEvent(legID: leg, sequence: seq, timestamp: ts, type: type, body: body)
            }
            return nil
        }
    }

    /// One statement as is: for tests that set up a store as another release left it.
    package func rawExecute(_ sql: String) async throws(HistoryError) {
        try await run { [self] in _ = try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger) }
    }

    static func record(_ row: PostgresRandomAccessRow) throws -> LegRecord {
        func text(_ name: String) throws -> String? { try row[name].decode(String?.self) }
        func real(_ name: String) throws -> Double? { try row[name].decode(Double?.self) }
        var r = LegRecord(
            legID: try row["leg_id"].decode(String.self), callID: try row["call_id"].decode(String.self),
            role: try row["role"].decode(String.self), instance: try row["instance"].decode(String.self),
            startedAt: try row["started_at"].decode(String.self))
        r.agentID = try text("agent_id")
        r.tags = HistorySQL.tags(fromJSON: try text("tags"))
        r.codec = try text("codec")
        r.source = try text("source")
        r.recordingSession = try text("recording_session")
        r.participant = try text("participant")
        r.endedAt = try text("ended_at")
        r.endReason = try text("end_reason")
        r.durationSeconds = try real("duration_s")
        r.speechSeconds = try real("speech_s")
        r.upsetFraction = try real("upset_fraction")
        r.peakUpset = try real("peak_upset")
        r.startUpset = try real("start_upset")
        r.endUpset = try real("end_upset")
        r.endedCalmer = try row["ended_calmer"].decode(Int?.self).map { $0 != 0 }
        r.escalations = try row["escalations"].decode(Int?.self)
        return r
    }
}
