import Foundation

/// How far an event log has been read: the file (by inode, which survives rotation's rename) and
/// the byte offset after the last whole line taken.
public struct LogPosition: Sendable, Equatable, CustomStringConvertible {
    public var inode: UInt64
    public var offset: Int64

    public init(inode: UInt64, offset: Int64) {
        self.inode = inode
        self.offset = offset
    }

    public var description: String { "inode \(inode) offset \(offset)" }
}

/// One leg as the store keeps it: who, when, how it ended and its `leg.end` summary.
public struct LegRecord: Sendable, Equatable {
    public var legID: String
    public var callID: String
    public var role: String
    public var instance: String
    public var agentID: String?
    /// A JSON object of strings, as `POST /v1/legs` took it.
    public var tags: [String: String]
    public var codec: String?
    public var source: String?
    public var recordingSession: String?
    public var participant: String?
    public var startedAt: String
    public var endedAt: String?
    public var endReason: String?
    public var durationSeconds: Double?
    public var speechSeconds: Double?
    public var upsetFraction: Double?
    public var peakUpset: Double?
    public var startUpset: Double?
    public var endUpset: Double?
    public var endedCalmer: Bool?
    public var escalations: Int?

    public init(legID: String, callID: String, role: String, instance: String, startedAt: String) {
        self.legID = legID
        self.callID = callID
        self.role = role
        self.instance = instance
        self.tags = [:]
        self.startedAt = startedAt
    }
}

/// One stored event: the line as the log has it, with the fields queries need.
public struct StoredEvent: Sendable, Equatable {
    public var legID: String
    public var sequence: Int64
    public var timestamp: String
    public var type: String
    /// The event's JSON, as published.
    public var body: String

    public init(legID: String, sequence: Int64, timestamp: String, type: String, body: String) {
        self.legID = legID
        self.sequence = sequence
        self.timestamp = timestamp
        self.type = type
        self.body = body
    }
}

/// What the store says is wrong, with what to do: every message is meant for the operator.
public struct HistoryError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A range of legs by start time, agent or call.
public struct LegQuery: Sendable, Equatable {
    public var callID: String?
    public var agentID: String?
    /// RFC 3339 bounds on `started_at`, inclusive from, exclusive until.
    public var since: String?
    public var until: String?
    public var limit: Int?

    public init(
        callID: String? = nil, agentID: String? = nil, since: String? = nil, until: String? = nil, limit: Int? = nil
    ) {
        self.callID = callID
        self.agentID = agentID
        self.since = since
        self.until = until
        self.limit = limit
    }
}

/// The store behind history, reports and several instances: SQLite embedded, or PostgreSQL.
public protocol HistoryStore: Sendable {
    /// Where it is, for messages (a path, or a URL without its password).
    var location: String { get }
    /// Creates or upgrades the schema. Refuses (and changes nothing in) a store that is not one, is
    /// broken, or was made by a newer emotiontap.
    func migrate() async throws(HistoryError)
    /// The schema version the store is at (0: empty).
    func schemaVersion() async throws(HistoryError) -> Int
    /// How far `instance`'s event log is stored; nil when nothing is.
    func position(instance: String) async throws(HistoryError) -> LogPosition?
    /// Writes a batch and the log position after it, in one transaction: all of it or none. Events
    /// already stored (a replay) are skipped.
    func write(_ batch: HistoryBatch, position: LogPosition, instance: String) async throws(HistoryError)
    /// Ends the legs `instance` left open when it stopped without ending them (a crash: legs do not
    /// outlive their process), with reason `lost`; how many.
    func closeOrphans(instance: String, startedBefore: String, at time: String) async throws(HistoryError) -> Int
    /// Removes legs that ended before `cutoff` (RFC 3339) and their events; how many legs went.
    func prune(endedBefore cutoff: String) async throws(HistoryError) -> Int
    /// Removes the events (the timelines) of legs that ended before `cutoff`, keeping the legs and
    /// their summaries; how many events went.
    func pruneTimelines(endedBefore cutoff: String) async throws(HistoryError) -> Int
    func legs(_ query: LegQuery) async throws(HistoryError) -> [LegRecord]
    /// A leg's events in order, optionally only of some types.
    func events(legID: String, types: [String]?) async throws(HistoryError) -> [StoredEvent]
    /// A leg's newest event of `type`, or nil.
    func latestEvent(legID: String, type: String) async throws(HistoryError) -> StoredEvent?
    func close() async
}
