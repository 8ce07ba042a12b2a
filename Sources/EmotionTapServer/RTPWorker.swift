import EmotionORTP
import Foundation
import Synchronization
import CLinux
import Glibc
import Logging
import Metrics

/// One thread that owns a set of legs: epoll over their sockets, drains what is ready, checks
/// timeouts. No task or actor hop per packet; legs arrive and leave through a locked queue.
final class RTPWorker: @unchecked Sendable {
    // `legs` belongs to the worker thread; `pending*`, `assigned` and `stopReason` are guarded by `lock`.
    private let epoll: Int32
    private var legs: [Int32: LiveLeg] = [:]
    private let lock = NSLock()
    private var pendingAdds: [LiveLeg] = []
    private var pendingEnds: [(String, String)] = []
    /// Legs given to this worker and not yet ended: what the manager balances on (never `legs.count`,
    /// which only the worker thread may read).
    private var assigned = 0
    private var stopReason: String?
    private let timeout: Double
    private let onEnded: @Sendable (LiveLeg) -> Void
    private let logger: Logger
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)
    /// The share of the last second the thread spent draining and housekeeping (not waiting), in
    /// thousandths: how close the worker is to falling behind. Written once a second by the thread.
    let busyPermille = Atomic<Int>(0)

    /// The busy share as a metric (`emotiontap_worker_busy_ratio{worker}`), recorded once a second.
    private let busyGauge: Gauge?

    init(
        index: Int, legTimeoutSeconds: Double, logger: Logger, busyGauge: Gauge? = nil,
        onEnded: @escaping @Sendable (LiveLeg) -> Void
    ) {
        self.busyGauge = busyGauge
        epoll = et_epoll_create()
        timeout = legTimeoutSeconds
        self.logger = logger
        self.onEnded = onEnded
        // Weak: a service whose start failed drops its workers, maybe before this thread runs.
        let t = Thread { [weak self] in self?.run() }
        t.name = "rtp-worker-\(index)"
        thread = t
    }

    func start() { thread?.start() }

    var legCount: Int { lock.withLock { assigned } }

    func add(_ leg: LiveLeg) {
        lock.withLock {
            pendingAdds.append(leg)
            assigned += 1
        }
    }

    func end(legID: String, reason: String) { lock.withLock { pendingEnds.append((legID, reason)) } }

    /// Ends every leg with `reason` and stops the thread; returns when done.
    func stop(reason: String) {
        lock.withLock { stopReason = reason }
        done.wait()
    }

    private func run() {
        var ready = [Int32](repeating: 0, count: 1024)
        var lastHousekeeping = 0.0
        var wokeAt = monotonicSeconds()
        var load = WorkerLoad(since: wokeAt)
        while true {
            let (adds, ends, stop) = lock.withLock { () -> ([LiveLeg], [(String, String)], String?) in
                defer { pendingAdds.removeAll(); pendingEnds.removeAll() }
                return (pendingAdds, pendingEnds, stopReason)
            }
            for leg in adds { register(leg) }
            let now = Date().timeIntervalSince1970
            for (id, reason) in ends {
                if let (fd, leg) = legs.first(where: { $0.value.identity.legID == id }) {
                    finish(fd, leg, reason: reason, now: now)
                }
            }
            if let stop {
                for (fd, leg) in legs { finish(fd, leg, reason: stop, now: now) }
                close(epoll)
                done.signal()
                return
            }
            // Wake at most once a tick: a packet waits up to a tick in its socket, and each wake drains
            // every leg that has something, instead of one wake (and one epoll_wait) per packet.
            let workDone = monotonicSeconds()
            if let permille = load.record(busy: workDone - wokeAt, at: workDone) {
                busyPermille.store(permille, ordering: .relaxed)
                busyGauge?.record(Double(permille) / 1000)
            }
            let sinceWake = workDone - wokeAt
            if sinceWake < Self.tick { usleep(UInt32((Self.tick - sinceWake) * 1e6)) }
            let n = ready.withUnsafeMutableBufferPointer { et_epoll_wait(epoll, $0.baseAddress, Int32($0.count), 20) }
            wokeAt = monotonicSeconds()
            let readAt = Date().timeIntervalSince1970
            if n > 0 {
                for i in 0..<Int(n) {
                    if let leg = legs[ready[i]] { leg.drain(now: readAt) }
                }
            }
            if readAt - lastHousekeeping >= 1 {
                lastHousekeeping = readAt
                for (fd, leg) in legs {
                    leg.refreshSnapshot()
                    if leg.mediaPaused.load(ordering: .relaxed) {
                        leg.lastPacketAt = readAt  // the timeout counts from the end of the pause
                    } else if readAt - leg.lastPacketAt > timeout {
                        finish(fd, leg, reason: "timeout", now: readAt)
                    }
                }
            }
        }
    }

    /// How often the worker wakes when packets keep coming; adds at most this much to event latency.
    static let tick = 0.010

    private func monotonicSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    private func register(_ leg: LiveLeg) {
        let fd = leg.media.fileDescriptor
        if et_epoll_add(epoll, fd) != 0 {
            logger.error(
                "epoll_ctl failed for a leg", metadata: ["leg.id": "\(leg.identity.legID)", "errno": "\(errno)"])
        }
        legs[fd] = leg
        // Whatever arrived before registration is still queued on the socket.
        leg.drain(now: Date().timeIntervalSince1970)
    }

    private func finish(_ fd: Int32, _ leg: LiveLeg, reason: String, now: Double) {
        _ = et_epoll_del(epoll, fd)
        leg.drainAll(now: now)
        leg.end(reason: reason, now: now)
        legs[fd] = nil
        lock.withLock { assigned -= 1 }
        onEnded(leg)
    }
}

/// A worker's busy share: time spent working (from a wake to the end of its pass) over wall time,
/// reported once a second.
struct WorkerLoad {
    private var windowStart: Double
    private var busy = 0.0

    init(since start: Double) { windowStart = start }

    /// Adds one pass; returns the last second's busy share in thousandths when a second has passed.
    mutating func record(busy seconds: Double, at now: Double) -> Int? {
        busy += max(0, seconds)
        let elapsed = now - windowStart
        guard elapsed >= 1 else { return nil }
        let permille = Int((1000 * busy / elapsed).rounded())
        windowStart = now
        busy = 0
        return min(1000, permille)
    }
}
