import Foundation

/// The statements both backends run (PostgreSQL numbers its placeholders, SQLite takes `?`: the
/// few written here use `?` and `PostgresHistoryStore` renumbers them).
enum HistorySQL {
    static let upsertLeg = """
        INSERT INTO legs (leg_id, call_id, role, instance, agent_id, tags, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (leg_id) DO UPDATE SET agent_id = COALESCE(excluded.agent_id, legs.agent_id),
          tags = COALESCE(excluded.tags, legs.tags)
        """
    static let legStarted = """
        UPDATE legs SET codec = ?, source = ?, recording_session = ?, participant = ? WHERE leg_id = ?
        """
    static let legEnded = """
        UPDATE legs SET ended_at = ?, end_reason = ?, duration_s = ?, speech_s = ?, upset_fraction = ?, peak_upset = ?,
          start_upset = ?, end_upset = ?, ended_calmer = ?, escalations = ?, summary = ? WHERE leg_id = ?
        """
    static let insertEvent = """
        INSERT INTO events (leg_id, seq, ts, type, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT (leg_id, seq) DO NOTHING
        """
    static let upsertPosition = """
        INSERT INTO log_positions (instance, inode, byte_offset, updated_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (instance) DO UPDATE SET inode = excluded.inode, byte_offset = excluded.byte_offset,
          updated_at = excluded.updated_at
        """
    static let closeOrphans = """
        UPDATE legs SET ended_at = ?, end_reason = 'lost' WHERE instance = ? AND ended_at IS NULL AND started_at < ?
        """
    static let pruneEvents = """
        DELETE FROM events WHERE leg_id IN (SELECT leg_id FROM legs WHERE ended_at IS NOT NULL AND ended_at < ?)
        """
    static let pruneLegs = "DELETE FROM legs WHERE ended_at IS NOT NULL AND ended_at < ?"

    static let legColumns = """
        leg_id, call_id, role, instance, agent_id, tags, codec, source, recording_session, participant, started_at,
        ended_at, end_reason, duration_s, speech_s, upset_fraction, peak_upset, start_upset, end_upset, ended_calmer,
        escalations
        """

    /// A leg query with its values; `placeholder(n)` spells the n-th (1-based) parameter.
    static func selectLegs(_ q: LegQuery, placeholder: (Int) -> String) -> (String, [SQLValue]) {
        var conditions: [String] = []
        var values: [SQLValue] = []
        func add(_ condition: String, _ value: SQLValue) {
            values.append(value)
            conditions.append(condition.replacingOccurrences(of: "?", with: placeholder(values.count)))
        }
        if let c = q.callID { add("call_id = ?", .text(c)) }
        if let a = q.agentID { add("agent_id = ?", .text(a)) }
        if let s = q.since { add("started_at >= ?", .text(s)) }
        if let u = q.until { add("started_at < ?", .text(u)) }
        var sql = "SELECT \(legColumns) FROM legs"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY started_at, leg_id"
        if let limit = q.limit { sql += " LIMIT \(max(0, limit))" }
        return (sql, values)
    }

    static func selectEvents(legID: String, types: [String]?, placeholder: (Int) -> String) -> (String, [SQLValue]) {
        var values: [SQLValue] = [.text(legID)]
        var sql = "SELECT leg_id, seq, ts, type, body FROM events WHERE leg_id = \(placeholder(1))"
        if let types, !types.isEmpty {
            let marks = types.map { t -> String in
                values.append(.text(t))
                return placeholder(values.count)
            }
            sql += " AND type IN (\(marks.joined(separator: ", ")))"
        }
        return (sql + " ORDER BY seq", values)
    }

    static func selectLatest(placeholder: (Int) -> String) -> String {
        "SELECT leg_id, seq, ts, type, body FROM events WHERE leg_id = \(placeholder(1)) AND type = \(placeholder(2)) "
            + "ORDER BY seq DESC LIMIT 1"
    }

    static func tagsJSON(_ tags: [String: String]) -> String? {
        guard !tags.isEmpty, let data = try? JSONSerialization.data(withJSONObject: tags, options: [.sortedKeys])
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func tags(fromJSON text: String?) -> [String: String] {
        guard let text, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String]
        else { return [:] }
        return object
    }
}

enum HistorySchemaCheck {
    static func newer(_ version: Int, location: String) -> HistoryError {
        HistoryError(
            "\(location) has schema version \(version), newer than this emotiontap knows "
                + "(\(HistorySchema.latestVersion)): it was written by a newer release. Nothing was changed; "
                + "run that release, or point history.store elsewhere")
    }
}

/// RFC 3339 UTC with milliseconds, as events carry their times.
public enum HistoryClock {
    public static func now() -> String { string(from: Date()) }

    public static func string(from date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }
}
