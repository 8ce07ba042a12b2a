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
    /// The same legs indexed by descriptor, for the per-wake lookup (no hashing).
    private var legsByDescriptor = ContiguousArray<LiveLeg?>()
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

    /// How late (ms) the thread read the oldest packet it read in the last second: its backlog.
    /// Written once a second by the thread.
    let backlogMilliseconds = Atomic<Int>(0)

    /// The load as metrics, recorded once a second: `emotiontap_worker_busy_ratio{worker}`,
    /// `emotiontap_worker_backlog_seconds{worker}` and `emotiontap_windows_skipped_total` (windows
    /// whose audio was read too late to analyse, `rtp.max_delay_ms`).
    struct LoadMetrics {
        var busy: Gauge
        var backlog: Gauge
        var windowsSkipped: Counter
    }
    private let metrics: LoadMetrics?
    /// Samples of skipped audio that make one window (the model's hop at the analysis rate).
    private let samplesPerWindow: Double

    init(
        index: Int, legTimeoutSeconds: Double, logger: Logger, metrics: LoadMetrics? = nil,
        windowHopSeconds: Double = 1, onEnded: @escaping @Sendable (LiveLeg) -> Void
    ) {
        self.metrics = metrics
        samplesPerWindow = max(1, windowHopSeconds * 8000)
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
            let now = Self.wallClock()
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
            if let (permille, backlog) = load.record(busy: workDone - wokeAt, at: workDone) {
                busyPermille.store(permille, ordering: .relaxed)
                backlogMilliseconds.store(Int((backlog * 1000).rounded()), ordering: .relaxed)
                metrics?.busy.record(Double(permille) / 1000)
                metrics?.backlog.record(backlog)
                let windows = (shedSamples / samplesPerWindow).rounded(.down)
                if windows > 0 {
                    metrics?.windowsSkipped.increment(by: Int64(windows))
                    shedSamples -= windows * samplesPerWindow
                }
            }
            let sinceWake = workDone - wokeAt
            if sinceWake < Self.tick { usleep(UInt32((Self.tick - sinceWake) * 1e6)) }
            var n = ready.withUnsafeMutableBufferPointer { et_epoll_wait(epoll, $0.baseAddress, Int32($0.count), 20) }
            wokeAt = monotonicSeconds()
            let readAt = Self.wallClock()
            var rounds = 0
            while n > 0 {
                for i in 0..<Int(n) {
                    // Each leg's own clock: behind, one pass over the legs can take seconds, and a leg
                    // judged by the pass's start would analyse audio already too late.
                    let fd = Int(ready[i])
                    if fd < legsByDescriptor.count, let leg = legsByDescriptor[fd] {
                        take(leg.drain(now: Self.wallClock()), into: &load)
                    }
                }
                // A full list: more legs are ready than one wait returns; take them in this wake too.
                rounds += 1
                guard Int(n) == ready.count, rounds < Self.maxRoundsPerWake else { break }
                n = ready.withUnsafeMutableBufferPointer { et_epoll_wait(epoll, $0.baseAddress, Int32($0.count), 0) }
            }
            if readAt - lastHousekeeping >= 1 {
                lastHousekeeping = readAt
                if endedSinceTrim > 0, readAt - lastTrim >= Self.trimInterval {
                    // Legs that ended (or a backlog that cleared) left freed memory in malloc's arenas,
                    // which glibc keeps from the system: give it back, so that RSS follows the load.
                    et_malloc_trim()
                    endedSinceTrim = 0
                    lastTrim = readAt
                }
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

    private var endedSinceTrim = 0
    private var lastTrim = 0.0
    /// At most this often (s), memory freed by ended legs goes back to the system.
    static let trimInterval = 5.0

    /// Skipped audio not yet a whole window, carried to the next second.
    private var shedSamples = 0.0

    @inline(__always)
    private func take(_ read: LiveLeg.Read, into load: inout WorkerLoad) {
        load.note(delay: read.oldestDelay)
        if read.shedSamples > 0 { shedSamples += Double(read.shedSamples) }
    }

    /// Ready lists (of up to 1024 legs) one wake takes before it sleeps again.
    static let maxRoundsPerWake = 8

    /// How often the worker wakes when packets keep coming; adds at most this much to event latency.
    static let tick = 0.010

    /// Seconds on `clock`: CLOCK_MONOTONIC for the worker's own timing, CLOCK_REALTIME for what is
    /// compared with packets' arrival stamps.
    @inline(__always)
    private static func seconds(_ clock: clockid_t) -> Double {
        var t = timespec()
        clock_gettime(clock, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
    private func monotonicSeconds() -> Double { Self.seconds(CLOCK_MONOTONIC) }
    static func wallClock() -> Double { seconds(CLOCK_REALTIME) }

    private func register(_ leg: LiveLeg) {
        let fd = leg.media.fileDescriptor
        if et_epoll_add(epoll, fd) != 0 {
            logger.error(
                "epoll_ctl failed for a leg", metadata: ["leg.id": "\(leg.identity.legID)", "errno": "\(errno)"])
        }
        legs[fd] = leg
        if Int(fd) >= legsByDescriptor.count {
            legsByDescriptor.append(contentsOf: repeatElement(nil, count: Int(fd) + 1 - legsByDescriptor.count))
        }
        legsByDescriptor[Int(fd)] = leg
        // Whatever arrived before registration is still queued on the socket.
        shedSamples += Double(leg.drain(now: Self.wallClock()).shedSamples)
    }

    private func finish(_ fd: Int32, _ leg: LiveLeg, reason: String, now: Double) {
        _ = et_epoll_del(epoll, fd)
        leg.drainAll(now: now)
        leg.end(reason: reason, now: now)
        legs[fd] = nil
        legsByDescriptor[Int(fd)] = nil
        lock.withLock { assigned -= 1 }
        endedSinceTrim += 1
        onEnded(leg)
    }
}

/// A worker's load, reported once a second: its busy share (time spent working, from a wake to the
/// end of its pass, over wall time) and its backlog (how late it read the oldest packet it read).
struct WorkerLoad {
    private var windowStart: Double
    private var busy = 0.0
    private var oldestDelay = 0.0

    init(since start: Double) { windowStart = start }

    /// A read whose oldest packet had waited `delay` seconds.
    @inline(__always)
    mutating func note(delay: Double) { oldestDelay = max(oldestDelay, delay) }

    /// Adds one pass; when a second has passed, returns its busy share in thousandths and its backlog
    /// in seconds.
    mutating func record(busy seconds: Double, at now: Double) -> (Int, Double)? {
        busy += max(0, seconds)
        let elapsed = now - windowStart
        guard elapsed >= 1 else { return nil }
        let permille = Int((1000 * busy / elapsed).rounded())
        let backlog = oldestDelay
        windowStart = now
        busy = 0
        oldestDelay = 0
        return (min(1000, permille), backlog)
    }
}
