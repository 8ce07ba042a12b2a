import COrtp
import Synchronization

/// oRTP's process-wide setup, done once before the first session.
public enum ORTPLibrary {
    private static let initialized = Mutex(false)

    /// Initialises oRTP and quiets its logging to errors (it logs every packet otherwise).
    public static func initialize() {
        initialized.withLock { done in
            guard !done else { return }
            ortp_init()
            et_ortp_set_log_mask(Int32(BCTBX_LOG_ERROR.rawValue | BCTBX_LOG_FATAL.rawValue))
            done = true
        }
    }

}
