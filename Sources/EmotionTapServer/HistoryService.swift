import EmotionHistory
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The history ingestor as a service of the application. On shutdown it keeps storing for a moment
/// (the legs' `leg.end` events are written to the log as the leg service ends them), then returns;
/// whatever is left is replayed from the log at the next start.
struct HistoryService: Service {
    let ingestor: HistoryIngestor
    let logger: Logger
    static let shutdownGrace: Duration = .milliseconds(1500)

    func run() async throws {
        let shutdownAt = Mutex<ContinuousClock.Instant?>(nil)
        await withGracefulShutdownHandler {
            await ingestor.run(stopRequested: {
                shutdownAt.withLock { $0.map { ContinuousClock.now - $0 >= Self.shutdownGrace } ?? false }
            })
        } onGracefulShutdown: {
            shutdownAt.withLock { $0 = ContinuousClock.now }
        }
        await ingestor.store.close()
    }
}

extension HistoryConfig {
    /// The configured store, opened (not yet migrated); nil when history is off.
    public func openStore(
        readOnly: Bool = false, logger: Logger = Logger(label: "emotiontap.history")
    )
        throws(ServiceError) -> (any HistoryStore)?
    {
        guard let store else { return nil }
        let location: Location
        do { location = try HistoryConfig.location(store) } catch { throw ServiceError("history.store: \(error)") }
        switch location {
        case .sqlite(let path):
            do { return try SQLiteHistoryStore(path: path, readOnly: readOnly) } catch {
                throw ServiceError("history store: \(error)")
            }
        case .postgres(let url):
            do { return try PostgresHistoryStore(url: url, logger: logger) } catch {
                throw ServiceError("history store: \(error)")
            }
        }
    }
}
