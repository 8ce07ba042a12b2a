import COrtp
import Foundation
import Logging
import Synchronization

/// oRTP's process-wide setup, done once before the first session.
public enum ORTPLibrary {
    private static let initialized = Mutex(false)

    private static let logger = Logger(label: "ortp")

    /// oRTP errors that are expected in normal running, at the level they deserve: a port another
    /// socket holds (the leg manager takes the next one and reports what it could not do), and the
    /// jitter buffer restarting its timing under heavy jitter (no packet is lost).
    static let routine = [
        "Fail to bind", "Could not bind", "Could not create and bind rtcp socket", "stays unconverged",
    ]

    static func severity(of level: BctbxLogLevel, _ message: String) -> Logger.Level {
        if routine.contains(where: { message.contains($0) }) { return .debug }
        return level == BCTBX_LOG_FATAL ? .critical : .error
    }

    static func forward(level: BctbxLogLevel, _ message: String) {
        logger.log(level: severity(of: level, message), "\(message)")
    }

    /// Initialises oRTP and quiets its logging to errors (it logs every packet otherwise).
    public static func initialize() {
        initialized.withLock { done in
            guard !done else { return }
            ortp_init()
            et_ortp_set_log_mask(Int32(BCTBX_LOG_ERROR.rawValue | BCTBX_LOG_FATAL.rawValue))
            // oRTP's lines go through swift-log like the service's own, not raw to stderr.
            bctbx_set_log_handler { _, level, format, arguments in
                guard let format, let arguments else { return }
                var line = [CChar](repeating: 0, count: 512)
                _ = vsnprintf(&line, line.count, format, arguments)
                ORTPLibrary.forward(
                    level: level, String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                )
            }
            done = true
        }
    }

}
