/// The history store's schema: one list of versioned migrations for SQLite and PostgreSQL alike.
/// Every statement is plain SQL both accept; where their types differ (`REAL` against
/// `DOUBLE PRECISION`), a migration names the column type by its role and `SQLDialect` spells it.
/// Times are RFC 3339 UTC strings with milliseconds (as the events carry them): they sort as text.
public enum HistorySchema {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let statements: @Sendable (SQLDialect) -> [String]
    }

    /// Add a migration at the end, never edit one that shipped: stores created by an older
    /// emotiontap apply only the ones they lack.
    public static let migrations: [Migration] = [
        Migration(version: 1, name: "legs, events, log positions") { d in
            [
                """
                CREATE TABLE legs (
                  leg_id TEXT PRIMARY KEY,
                  call_id TEXT NOT NULL,
                  role TEXT NOT NULL,
                  instance TEXT NOT NULL,
                  agent_id TEXT,
                  tags TEXT,
                  codec TEXT,
                  source TEXT,
                  recording_session TEXT,
                  participant TEXT,
                  started_at TEXT NOT NULL,
                  ended_at TEXT,
                  end_reason TEXT,
                  duration_s \(d.real),
                  speech_s \(d.real),
                  upset_fraction \(d.real),
                  peak_upset \(d.real),
                  start_upset \(d.real),
                  end_upset \(d.real),
                  ended_calmer INTEGER,
                  escalations INTEGER,
                  summary TEXT
                )
                """,
                "CREATE INDEX legs_call_id ON legs (call_id)",
                "CREATE INDEX legs_agent_started ON legs (agent_id, started_at)",
                "CREATE INDEX legs_started ON legs (started_at)",
                "CREATE INDEX legs_ended ON legs (ended_at)",
                // The legs an instance holds now: the ones it started and has not ended.
                "CREATE INDEX legs_open ON legs (instance) WHERE ended_at IS NULL",
                """
                CREATE TABLE events (
                  leg_id TEXT NOT NULL,
                  seq \(d.bigint) NOT NULL,
                  ts TEXT NOT NULL,
                  type TEXT NOT NULL,
                  body TEXT NOT NULL,
                  PRIMARY KEY (leg_id, seq)
                )
                """,
                // How far each instance's event log has been stored: written in the same transaction as
                // the events, so a restart replays exactly what is missing.
                """
                CREATE TABLE log_positions (
                  instance TEXT PRIMARY KEY,
                  inode \(d.bigint) NOT NULL,
                  byte_offset \(d.bigint) NOT NULL,
                  updated_at TEXT NOT NULL
                )
                """,
            ]
        }
    ]

    public static var latestVersion: Int { migrations.last?.version ?? 0 }

    /// The bookkeeping table, created before any migration.
    static func migrationsTable(_ d: SQLDialect) -> String {
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version INTEGER PRIMARY KEY,
          name TEXT NOT NULL,
          applied_at TEXT NOT NULL
        )
        """
    }
}

/// Where SQLite and PostgreSQL spell a type differently.
public enum SQLDialect: Sendable {
    case sqlite, postgres

    var real: String { self == .sqlite ? "REAL" : "DOUBLE PRECISION" }
    var bigint: String { self == .sqlite ? "INTEGER" : "BIGINT" }
}
