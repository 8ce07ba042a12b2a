import EmotionProtocol
import Foundation
import Logging
import ServiceLifecycle

/// The long-running part of the RTP side: declares static legs, sends heartbeats, and on graceful
/// shutdown ends every leg with `leg.end` (reason `shutdown`) before the process exits.
public struct LegService: Service {
    let manager: LegManager
    let logger: Logger

    public init(manager: LegManager, logger: Logger) {
        self.manager = manager
        self.logger = logger
    }

    public func run() async throws {
        for leg in manager.config.staticLegs {
            do {
                _ = try manager.create(
                    callID: leg.callID, role: leg.role, codec: leg.codec, port: leg.port, agentID: leg.agentID)
            } catch {
                logger.error("static leg not started", metadata: ["rtp.port": "\(leg.port)", "error": "\(error)"])
            }
        }
        let interval = manager.config.heartbeatSeconds
        do {
            while !Task.isShuttingDownGracefully {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int(interval * 1000))) }
                if Task.isShuttingDownGracefully { break }
                manager.publisher.publish(.heartbeat(Heartbeat(legs: manager.activeCount)), leg: nil)
            }
        } catch is CancellationError {
            // Graceful shutdown or cancellation: fall through to end the legs.
        }
        logger.info("ending all legs", metadata: ["legs": "\(manager.activeCount)"])
        manager.shutdown()
    }
}
