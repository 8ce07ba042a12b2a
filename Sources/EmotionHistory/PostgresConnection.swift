internal import CLibPQ
import Dispatch
import Foundation
import Logging

/// One libpq connection (`PGconn`), opened when first needed and opened again after it breaks.
///
/// libpq's calls block, and one `PGconn` must never be used from two threads at once, so every use
/// happens on `queue`, a serial queue of its own: the store's async callers never block a thread of
/// the cooperative pool, and the statements of one transaction never interleave with another's.
final class PostgresConnection: @unchecked Sendable {
    // @unchecked Sendable: `handle` and `isClosed` are only read and written on `queue`.
    let queue: DispatchQueue
    private let settings: [(keyword: String, value: String)]
    private let location: String
    private let logger: Logger
    private var handle: OpaquePointer?
    private var isClosed = false

    /// `settings`: libpq connection keywords and their values (`host`, `dbname`, ...).
    init(settings: [(keyword: String, value: String)], location: String, logger: Logger) {
        self.settings = settings
        self.location = location
        self.logger = logger
        queue = DispatchQueue(label: "emotiontap.history.postgres")
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    /// Runs `body` with a connection that is up, reconnecting first if the last one broke (the server
    /// restarted, the network dropped it), so an outage that ends is recovered from on the next call.
    /// Call on `queue` only.
    func withSession<T>(_ body: (PostgresSession) throws(HistoryError) -> T) throws(HistoryError) -> T {
        dispatchPrecondition(condition: .onQueue(queue))
        let (handle, reused) = try connected()
        let session = PostgresSession(handle: handle, location: location)
        do {
            return try body(session)
        } catch {
            // A connection that sat idle can have been dropped by the server (a restart, an administrator,
            // an idle timeout) in a way libpq sees only when it sends: then the very first statement
            // fails, and since the server never ran it, the call is made once more on a new connection.
            guard reused, session.statementsSent == 1, PQstatus(handle) != CONNECTION_OK else { throw error }
            logger.debug(
                "PostgreSQL connection was dropped while idle; retrying on a new one",
                metadata: ["store": "\(location)"])
            let (fresh, _) = try connected()
            return try body(PostgresSession(handle: fresh, location: location))
        }
    }

    /// Ends the connection once the calls already queued are done; later calls fail at once.
    func close() {
        queue.async { [self] in
            isClosed = true
            if let handle { PQfinish(handle) }
            handle = nil
        }
    }

    /// The connection, and whether it is one that earlier calls used.
    private func connected() throws(HistoryError) -> (handle: OpaquePointer, reused: Bool) {
        guard !isClosed else { throw HistoryError("\(location): the history store is closed") }
        if let handle {
            // libpq finds out that the server went away only when it next reads. Reading what arrived
            // while idle (on a restart, the server's termination notice and then the end of the stream)
            // finds a closed connection now, when its end has arrived; one whose end has not is caught
            // by the retry in `withSession`. The socket is non-blocking: this never waits. A connection
            // left inside a transaction is not reused either.
            if PQconsumeInput(handle) == 1, PQstatus(handle) == CONNECTION_OK,
                PQtransactionStatus(handle) == PQTRANS_IDLE
            {
                return (handle, true)
            }
            logger.debug(
                "PostgreSQL connection lost; reconnecting",
                metadata: ["store": "\(location)", "error": "\(Self.oneLine(PQerrorMessage(handle)))"])
            PQfinish(handle)
            self.handle = nil
        }
        let fresh = Self.connect(settings)
        guard let fresh, PQstatus(fresh) == CONNECTION_OK else {
            let reason = fresh.map { Self.oneLine(PQerrorMessage($0)) } ?? "out of memory"
            if let fresh { PQfinish(fresh) }
            throw HistoryError("\(location): cannot reach PostgreSQL (\(reason))")
        }
        // libpq prints server notices ("relation ... already exists, skipping") on stderr by default.
        PQsetNoticeProcessor(
            fresh,
            { context, message in
                guard let context, let message else { return }
                let connection = Unmanaged<PostgresConnection>.fromOpaque(context).takeUnretainedValue()
                connection.logger.debug(
                    "PostgreSQL notice",
                    metadata: ["store": "\(connection.location)", "notice": "\(PostgresConnection.oneLine(message))"])
            },
            // Unretained: the connection outlives its PGconn, which it finishes in deinit at the latest.
            Unmanaged.passUnretained(self).toOpaque())
        handle = fresh
        return (fresh, false)
    }

    /// PQconnectdbParams, blocking for at most the `connect_timeout` in `settings`.
    private static func connect(_ settings: [(keyword: String, value: String)]) -> OpaquePointer? {
        // Both arrays are NULL-terminated; the strings must outlive the call.
        let keywords = settings.map { UnsafePointer(strdup($0.keyword)) } + [nil]
        let values = settings.map { UnsafePointer(strdup($0.value)) } + [nil]
        defer {
            for p in keywords + values { free(UnsafeMutablePointer(mutating: p)) }
        }
        // expand_dbname 0: the database name is taken literally, never parsed as a connection string.
        return PQconnectdbParams(keywords, values, 0)
    }

    /// libpq's messages end in a newline and may span lines ("Is the server running on that host...?").
    static func oneLine(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "no message" }
        return String(cString: message).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}

/// A connection that is up, for the statements of one call on the connection's queue.
final class PostgresSession {
    fileprivate let handle: OpaquePointer
    let location: String
    /// Statements sent so far, the failed one included.
    fileprivate private(set) var statementsSent = 0

    fileprivate init(handle: OpaquePointer, location: String) {
        self.handle = handle
        self.location = location
    }

    /// Runs one statement, its placeholders numbered (`$1`, `$2`...) as PostgreSQL wants them and
    /// `parameters` bound as text (nil as NULL): the server converts each to the type its place asks for.
    @discardableResult
    func execute(
        _ sql: String, _ parameters: [(any PostgresTextParameter)?] = []
    ) throws(HistoryError)
        -> PostgresRows
    {
        let texts = parameters.map { $0.map { UnsafePointer(strdup($0.postgresText)) } ?? nil }
        defer {
            for p in texts { free(UnsafeMutablePointer(mutating: p)) }
        }
        statementsSent += 1
        // No parameter types (the server infers each from where it stands) and result format 0: values
        // go out as text and come back as text.
        guard let result = PQexecParams(handle, sql, Int32(texts.count), nil, texts, nil, nil, 0) else {
            throw failure(nil)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else { throw failure(result) }
        return PostgresRows(result)
    }

    /// `body` inside BEGIN ... COMMIT, rolled back when it throws.
    func transaction<T>(_ body: () throws(HistoryError) -> T) throws(HistoryError) -> T {
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            // On a broken connection there is nothing to roll back: the server already has.
            if PQstatus(handle) == CONNECTION_OK { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    /// The server's own words when it refused the statement; otherwise libpq's, and when the
    /// connection broke, said as such (the next call reconnects).
    private func failure(_ result: OpaquePointer?) -> HistoryError {
        if let result, PQresultErrorField(result, Self.sqlStateField) != nil,
            let message = PQresultErrorField(result, Self.primaryMessageField)
        {
            return HistoryError("\(location): \(String(cString: message))")
        }
        let message = PostgresConnection.oneLine(result.map { PQresultErrorMessage($0) } ?? PQerrorMessage(handle))
        if PQstatus(handle) != CONNECTION_OK {
            return HistoryError("\(location): cannot reach PostgreSQL (\(message))")
        }
        return HistoryError("\(location): \(message)")
    }

    // PG_DIAG_SQLSTATE and PG_DIAG_MESSAGE_PRIMARY are character-literal macros.
    private static let sqlStateField = Int32(UInt8(ascii: "C"))
    private static let primaryMessageField = Int32(UInt8(ascii: "M"))
}

/// A statement's rows, copied out of the PGresult (which is cleared at once), every value as text.
struct PostgresRows {
    private let columnIndex: [String: Int]
    private let values: [[String?]]
    /// Rows inserted, updated or deleted (PQcmdTuples), 0 for other statements.
    let affected: Int

    fileprivate init(_ result: OpaquePointer) {
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        var index: [String: Int] = [:]
        for c in 0..<columnCount {
            if let name = PQfname(result, c) { index[String(cString: name)] = Int(c) }
        }
        columnIndex = index
        values = (0..<rowCount).map { r in
            (0..<columnCount).map { c in
                PQgetisnull(result, r, c) == 1 ? nil : String(cString: PQgetvalue(result, r, c))
            }
        }
        affected = Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    var count: Int { values.count }

    /// The value at `row`, `column` (by position), nil for NULL.
    func text(_ row: Int, _ column: Int) -> String? { values[row][column] }

    /// The value at `row` in the column named `column`, nil for NULL.
    func text(_ row: Int, _ column: String) -> String? {
        columnIndex[column].flatMap { values[row][$0] }
    }

    func int64(_ row: Int, _ column: Int) -> Int64? { text(row, column).flatMap { Int64($0) } }
    func int(_ row: Int, _ column: String) -> Int? { text(row, column).flatMap { Int($0) } }
    func double(_ row: Int, _ column: String) -> Double? { text(row, column).flatMap { Double($0) } }
}

/// A value for a placeholder, spelled as PostgreSQL reads that type's text input.
protocol PostgresTextParameter: Sendable {
    var postgresText: String { get }
}

extension String: PostgresTextParameter {
    var postgresText: String { self }
}

extension Int: PostgresTextParameter {
    var postgresText: String { String(self) }
}

extension Int64: PostgresTextParameter {
    var postgresText: String { String(self) }
}

extension Double: PostgresTextParameter {
    // Swift's description is the shortest text that reads back as the same Double ("0.25", "1e-05",
    // "inf", "nan"), and PostgreSQL's float8 input takes all of those.
    var postgresText: String { description }
}
