import Dispatch
import Foundation
import Logging

/// The shared store: several instances write their legs into one PostgreSQL database (through libpq,
/// one connection per store), each under its own instance name, and any of them can answer for a
/// call whose legs another holds. Same schema and statements as SQLite (`HistorySchema`, `HistorySQL`).
public final class PostgresHistoryStore: HistoryStore {
    public let location: String
    /// How long one operation may wait for the server, queueing behind earlier ones included.
    public let timeoutSeconds: Double
    private let connection: PostgresConnection

    /// `url`: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require] (or
    /// postgresql://). USER defaults to postgres, DATABASE to USER. Nothing is connected here: the
    /// first operation connects.
    public init(url: String, logger: Logger, timeoutSeconds: Double = 15) throws(HistoryError) {
        self.timeoutSeconds = timeoutSeconds
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(),
            scheme == "postgres" || scheme == "postgresql", let host = parts.host, !host.isEmpty
        else {
            throw HistoryError("\(url) is not a PostgreSQL URL: postgres://USER@HOST[:PORT]/DATABASE")
        }
        var display = parts
        display.password = nil
        location = display.string ?? "postgres://\(host)"
        let settings = try Self.connectionSettings(
            parts, host: host, timeoutSeconds: timeoutSeconds, location: location)
        connection = PostgresConnection(settings: settings, location: location, logger: logger)
    }

    public func close() async { connection.close() }

    // MARK: Connecting

    /// The URL's parts as libpq connection keywords. Every one that matters is set here rather than
    /// left to libpq's defaults, so the store connects as the URL says and not as PG* environment
    /// variables or the operating system user would have it.
    static func connectionSettings(
        _ parts: URLComponents, host: String, timeoutSeconds: Double, location: String
    ) throws(HistoryError) -> [(keyword: String, value: String)] {
        let user = parts.user ?? "postgres"
        let path = parts.path.hasPrefix("/") ? String(parts.path.dropFirst()) : parts.path
        // URLComponents may keep an IPv6 literal's brackets, which libpq does not want.
        let bareHost = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var settings: [(keyword: String, value: String)] = [
            ("host", bareHost),
            ("port", "\(parts.port ?? 5432)"),
            ("user", user),
            ("dbname", path.isEmpty ? user : path),
            ("application_name", "emotiontap"),
            // libpq gives up on each address after this many seconds (2 at least); the caller's own
            // bound is `timeoutSeconds`, and 5 s was the connect timeout before libpq.
            ("connect_timeout", "\(min(5, max(2, Int(timeoutSeconds.rounded(.up)))))"),
            // A server that vanishes mid-statement (no reset, no answer) would hold the connection for
            // the kernel's two hours; with these it is given up after about half a minute.
            ("keepalives", "1"), ("keepalives_idle", "10"), ("keepalives_interval", "5"), ("keepalives_count", "3"),
            ("tcp_user_timeout", "30000"),
            // Only TLS or nothing, as the URL says: no GSSAPI encryption attempt first.
            ("gssencmode", "disable"),
        ]
        if let password = parts.password { settings.append(("password", password)) }
        switch parts.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable" {
        case "disable":
            settings.append(("sslmode", "disable"))
        case "require":
            // `require` has always meant TLS with the server's certificate and name checked against
            // the system's trusted roots (libpq's own `require` would take any certificate).
            settings.append(("sslmode", "verify-full"))
            if let roots = systemTrustRoots { settings.append(("sslrootcert", roots)) }
        default:
            throw HistoryError("\(location): sslmode must be disable or require")
        }
        return settings
    }

    /// The system's CA bundle (Debian's first), which libpq does not look for on its own in release 15.
    static let systemTrustRoots: String? = [
        "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem",
    ].first { FileManager.default.fileExists(atPath: $0) }

    // MARK: Waiting, bounded

    /// Runs `work` on the connection's queue and waits at most `timeoutSeconds` for it, the time spent
    /// queued behind earlier calls included: a server that does not answer must not hold up the
    /// ingestor, which would rather retry itself, with its own backoff. Work whose caller stopped
    /// waiting before it began is skipped. Work already running is left to finish on the server, as
    /// it was before libpq: cancelling it there would keep a prune that takes longer than the bound
    /// from ever finishing, and a write that commits late is one the ingestor's retry repeats
    /// harmlessly (every write is idempotent). Calls behind it wait their own bound.
    private func run<T: Sendable>(
        _ work: @escaping @Sendable (PostgresSession) throws(HistoryError) -> T
    ) async throws(HistoryError) -> T {
        let reply = PendingReply<T>()
        let timeout = HistoryError(
            "\(location): no answer from PostgreSQL in \(Int(timeoutSeconds)) s (is it running and reachable?)")
        // Not cancelled when the work answers first: it then finds the reply given and does nothing.
        DispatchQueue.global().asyncAfter(deadline: .now() + timeoutSeconds) { reply.answer(.failure(timeout)) }
        connection.queue.async { [connection] in
            guard reply.isAwaited else { return }
            reply.answer(Result { () throws(HistoryError) -> T in try connection.withSession(work) })
        }
        let cancelled = HistoryError("\(location): cancelled before PostgreSQL answered")
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { reply.wait(with: $0) }
        } onCancel: {
            reply.answer(.failure(cancelled))
        }
        return try result.get()
    }

    // MARK: Statements

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

    public func schemaVersion() async throws(HistoryError) -> Int {
        try await run { session throws(HistoryError) in
            let exists = try session.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            guard exists.text(0, 0) == "t" else { return 0 }
            let rows = try session.execute("SELECT MAX(version) FROM schema_migrations")
            return rows.int64(0, 0).map { Int($0) } ?? 0
        }
    }

    public func migrate() async throws(HistoryError) {
        let now = HistoryClock.now()
        let location = location
        try await run { session throws(HistoryError) in
            try session.transaction { () throws(HistoryError) in
                // Instances starting together: one migrates, the others wait and then find it done.
                try session.execute("SELECT pg_advisory_xact_lock(7140147)")
                try session.execute(HistorySchema.migrationsTable(.postgres))
                let current =
                    try session.execute("SELECT MAX(version) FROM schema_migrations").int64(0, 0).map { Int($0) } ?? 0
                guard current <= HistorySchema.latestVersion else {
                    throw HistorySchemaCheck.newer(current, location: location)
                }
                for m in HistorySchema.migrations where m.version > current {
                    for statement in m.statements(.postgres) { try session.execute(statement) }
                    try session.execute(
                        Self.numbered("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
                        [m.version, m.name, now])
                }
            }
        }
    }

    public func position(instance: String) async throws(HistoryError) -> LogPosition? {
        try await run { session throws(HistoryError) in
            let rows = try session.execute(
                Self.numbered("SELECT inode, byte_offset FROM log_positions WHERE instance = ?"), [instance])
            guard rows.count > 0, let inode = rows.int64(0, 0), let offset = rows.int64(0, 1) else { return nil }
            return LogPosition(inode: UInt64(bitPattern: inode), offset: offset)
        }
    }

    public func write(_ batch: HistoryBatch, position: LogPosition, instance: String) async throws(HistoryError) {
        let now = HistoryClock.now()
        try await run { session throws(HistoryError) in
            try session.transaction { () throws(HistoryError) in
                for id in batch.legOrder {
                    guard let u = batch.legs[id] else { continue }
                    let r = u.record
                    try session.execute(
                        Self.numbered(HistorySQL.upsertLeg),
                        [r.legID, r.callID, r.role, instance, r.agentID, HistorySQL.tagsJSON(r.tags), r.startedAt])
                    if u.started {
                        try session.execute(
                            Self.numbered(HistorySQL.legStarted),
                            [r.codec, r.source, r.recordingSession, r.participant, r.legID])
                    }
                    if u.ended {
                        let calmer: Int? = r.endedCalmer.map { $0 ? 1 : 0 }
                        try session.execute(
                            Self.numbered(HistorySQL.legEnded),
                            [
                                r.endedAt, r.endReason, r.durationSeconds, r.speechSeconds, r.upsetFraction,
                                r.peakUpset, r.startUpset, r.endUpset, calmer, r.escalations, u.summary, r.legID,
                            ])
                    }
                }
                // The events in statements of up to 200 rows each: one round trip per 200, not per event.
                var start = 0
                while start < batch.events.count {
                    let slice = batch.events[start..<min(batch.events.count, start + 200)]
                    var values: [(any PostgresTextParameter)?] = []
                    var rows: [String] = []
                    for e in slice {
                        values += [e.legID, e.sequence, e.timestamp, e.type, e.body]
                        rows.append("(?, ?, ?, ?, ?)")
                    }
                    try session.execute(
                        Self.numbered(
                            "INSERT INTO events (leg_id, seq, ts, type, body) VALUES " + rows.joined(separator: ", ")
                                + " ON CONFLICT (leg_id, seq) DO NOTHING"), values)
                    start += slice.count
                }
                try session.execute(
                    Self.numbered(HistorySQL.upsertPosition),
                    [instance, Int64(bitPattern: position.inode), position.offset, now])
            }
        }
    }

    /// One statement outside a transaction; how many rows it changed.
    private func execute(_ sql: String, _ values: [(any PostgresTextParameter)?]) async throws(HistoryError) -> Int {
        let statement = Self.numbered(sql)
        return try await run { session throws(HistoryError) in
            try session.execute(statement, values).affected
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
        let location = location
        return try await run { session throws(HistoryError) in
            let rows = try session.execute(sql, values.map(Self.parameter))
            var out: [LegRecord] = []
            for i in 0..<rows.count { out.append(try Self.record(rows, i, location: location)) }
            return out
        }
    }

    public func events(legID: String, types: [String]?) async throws(HistoryError) -> [StoredEvent] {
        let (sql, values) = HistorySQL.selectEvents(legID: legID, types: types, placeholder: { "$\($0)" })
        let location = location
        return try await run { session throws(HistoryError) in
            let rows = try session.execute(sql, values.map(Self.parameter))
            var out: [StoredEvent] = []
            for i in 0..<rows.count { out.append(try Self.event(rows, i, location: location)) }
            return out
        }
    }

    public func latestEvent(legID: String, type: String) async throws(HistoryError) -> StoredEvent? {
        let sql = HistorySQL.selectLatest(placeholder: { "$\($0)" })
        let location = location
        return try await run { session throws(HistoryError) in
            let rows = try session.execute(sql, [legID, type])
            return rows.count > 0 ? try Self.event(rows, 0, location: location) : nil
        }
    }

    /// One statement as is: for tests that set up a store as another release left it.
    package func rawExecute(_ sql: String) async throws(HistoryError) {
        try await run { session throws(HistoryError) in _ = try session.execute(sql) }
    }

    // MARK: Rows

    static func parameter(_ value: SQLValue) -> (any PostgresTextParameter)? {
        switch value {
        case .text(let s): s
        case .int(let i): i
        }
    }

    /// A column the schema declares NOT NULL.
    private static func requiredText(
        _ rows: PostgresRows, _ i: Int, _ column: String, location: String
    ) throws(HistoryError) -> String {
        guard let value = rows.text(i, column) else { throw HistoryError("\(location): \(column) is NULL in a row") }
        return value
    }

    /// Columns in HistorySQL's order: leg_id, seq, ts, type, body.
    static func event(_ rows: PostgresRows, _ i: Int, location: String) throws(HistoryError) -> StoredEvent {
        guard let leg = rows.text(i, 0), let seq = rows.int64(i, 1), let ts = rows.text(i, 2),
            let type = rows.text(i, 3), let body = rows.text(i, 4)
        else { throw HistoryError("\(location): an event row with a NULL column") }
        return StoredEvent(legID: leg, sequence: seq, timestamp: ts, type: type, body: body)
    }

    static func record(_ rows: PostgresRows, _ i: Int, location: String) throws(HistoryError) -> LegRecord {
        func required(_ column: String) throws(HistoryError) -> String {
            try requiredText(rows, i, column, location: location)
        }
        var r = LegRecord(
            legID: try required("leg_id"), callID: try required("call_id"), role: try required("role"),
            instance: try required("instance"), startedAt: try required("started_at"))
        r.agentID = rows.text(i, "agent_id")
        r.tags = HistorySQL.tags(fromJSON: rows.text(i, "tags"))
        r.codec = rows.text(i, "codec")
        r.source = rows.text(i, "source")
        r.recordingSession = rows.text(i, "recording_session")
        r.participant = rows.text(i, "participant")
        r.endedAt = rows.text(i, "ended_at")
        r.endReason = rows.text(i, "end_reason")
        r.durationSeconds = rows.double(i, "duration_s")
        r.speechSeconds = rows.double(i, "speech_s")
        r.upsetFraction = rows.double(i, "upset_fraction")
        r.peakUpset = rows.double(i, "peak_upset")
        r.startUpset = rows.double(i, "start_upset")
        r.endUpset = rows.double(i, "end_upset")
        r.endedCalmer = rows.int(i, "ended_calmer").map { $0 != 0 }
        r.escalations = rows.int(i, "escalations")
        return r
    }
}

/// The answer to one call, given once: by the work, by the timeout, or by the caller's cancellation,
/// whichever comes first; later ones are dropped.
private final class PendingReply<T: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: every field is read and written under `lock`.
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Result<T, HistoryError>, Never>?
    /// An answer that came before the caller began waiting (a task cancelled before it called).
    private var early: Result<T, HistoryError>?
    private var answered = false

    /// Whether the caller still waits: false once it was answered (timed out, cancelled).
    var isAwaited: Bool { lock.withLock { !answered } }

    func wait(with continuation: CheckedContinuation<Result<T, HistoryError>, Never>) {
        let ready: Result<T, HistoryError>? = lock.withLock {
            if let early { return early }
            self.continuation = continuation
            return nil
        }
        if let ready { continuation.resume(returning: ready) }
    }

    func answer(_ result: Result<T, HistoryError>) {
        let waiting: CheckedContinuation<Result<T, HistoryError>, Never>? = lock.withLock {
            guard !answered else { return nil }
            answered = true
            let waiting = continuation
            continuation = nil
            if waiting == nil { early = result }
            return waiting
        }
        // Resumed outside the lock: the caller's task may run on at once.
        waiting?.resume(returning: result)
    }
}
