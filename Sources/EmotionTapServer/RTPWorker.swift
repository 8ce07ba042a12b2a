import EmotionORTP
import Foundation
import Synchronization
import CLinux
import Glibc
import Logging
import Metrics

/// One thread that owns a set of legs: reads their sockets on its own schedule (and, through epoll,
/// the stream legs whose inbox holds audio), checks timeouts. No task or actor hop per packet; legs
/// arrive and leave through a locked queue.
///
/// Every `rtp.read_interval_ms` a full pass reads each leg that holds audio: several packets
/// per read, so each leg's state is brought into the cache (and its socket asked until it would
/// block) once per interval, not once per packet. A leg whose next window ends before the next pass
/// reaches it goes on the prompt list and is read every tick from when that window's last packet is due, so a
/// verdict waits at most a tick for its audio, whatever the interval. New legs and bursting ones
/// (datagrams faster than real time) are read every tick too, so a burst does not overflow the socket.
final class RTPWorker: @unchecked Sendable {
    // `legs` belongs to the worker thread; `pending*`, `assigned` and `stopReason` are guarded by `lock`.
    private let epoll: Int32
    private var legs: [Int32: LiveLeg] = [:]
    /// The RTP legs, read on every full pass without epoll. A socket in an epoll set costs a wake-up
    /// callback on every datagram (the receiving softirq takes the epoll's lock to queue it as ready),
    /// and the worker never sleeps in `epoll_wait` anyway: it reads on its schedule. A leg with nothing
    /// queued costs one `recvmmsg` answering `EAGAIN` per pass.
    private var polled = ContiguousArray<LiveLeg>()
    /// The legs in the epoll set (stream legs, by their inbox's descriptor), for the per-wake lookup
    /// (no hashing).
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
    /// Cuts the thread's sleep short: a leg to add, or a stop.
    private let wake = DispatchSemaphore(value: 0)
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
        windowHopSeconds: Double = 1, readIntervalSeconds: Double = 0.2, nice: Int? = nil,
        onEnded: @escaping @Sendable (LiveLeg) -> Void
    ) {
        self.metrics = metrics
        readInterval = max(Self.tick, readIntervalSeconds)
        promptHorizon = readInterval
        samplesPerWindow = max(1, windowHopSeconds * 8000)
        epoll = et_epoll_create()
        timeout = legTimeoutSeconds
        self.logger = logger
        self.onEnded = onEnded
        // Weak: a service whose start failed drops its workers, maybe before this thread runs.
        let name = "rtp-worker-\(index)"
        let t = Thread { [weak self] in
            // Foundation's name is not the kernel's: set that one too, for top -H and ps -L.
            et_set_thread_name(name)
            guard let self else { return }
            if let nice { self.setNice(nice, warn: index == 0) }  // one warning, not one per worker
            self.run()
        }
        t.name = name
        thread = t
    }

    func start() { thread?.start() }

    var legCount: Int { lock.withLock { assigned } }

    func add(_ leg: LiveLeg) {
        lock.withLock {
            pendingAdds.append(leg)
            assigned += 1
        }
        // A new leg is read from its first packet, not from the next full pass: its sender may start
        // with a burst.
        wake.signal()
    }

    func end(legID: String, reason: String) { lock.withLock { pendingEnds.append((legID, reason)) } }

    /// Ends every leg with `reason` and stops the thread; returns when done.
    func stop(reason: String) {
        lock.withLock { stopReason = reason }
        wake.signal()
        done.wait()
    }

    /// `rtp.worker_nice`, set by the thread on itself as it starts.
    private func setNice(_ nice: Int, warn: Bool) {
        let error = et_set_thread_nice(Int32(nice))
        guard error != 0, warn else { return }
        logger.warning(
            "rtp.worker_nice not applied (it needs CAP_SYS_NICE or RLIMIT_NICE): the RTP workers run at the process's priority",
            metadata: ["rtp.worker_nice": "\(nice)", "error": "\(String(cString: strerror(error)))"])
    }

    private func run() {
        var ready = [Int32](repeating: 0, count: 1024)
        var lastHousekeeping = 0.0
        var wokeAt = monotonicSeconds()
        var nextFullRead = wokeAt
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
            // Sleep to the next full read, or to when the prompt list has a leg due, a tick at least
            // (`nextPromptDue` is on the wall clock packets are stamped with; this schedule is monotonic).
            let promptWake = workDone + (nextPromptDue - Self.wallClock())
            let wakeAt = prompt.isEmpty ? nextFullRead : min(nextFullRead, max(promptWake, wokeAt + Self.tick))
            if wakeAt > workDone { _ = wake.wait(timeout: .now() + min(wakeAt - workDone, 1)) }
            wokeAt = monotonicSeconds()
            if wokeAt >= nextFullRead {
                // Never more than one pass behind: a slow pass moves the schedule rather than piling up.
                nextFullRead = max(nextFullRead + readInterval, wokeAt + readInterval / 2)
                let gap = lastPassStart.isFinite ? wokeAt - lastPassStart : readInterval
                lastPassStart = wokeAt
                readReady(&ready, into: &load)
                // The next pass reaches a leg up to the gap between passes plus a pass's length after this
                // one did (both grow when the worker shares a full box): a window ending within that is
                // waited for on the prompt list, not left to the next pass.
                let horizon = max(readInterval, min(gap, 1)) + (monotonicSeconds() - wokeAt) + Self.tick
                promptHorizon = min(Self.maxPromptHorizon, horizon)
            }
            if !prompt.isEmpty { readPrompt(into: &load) }
            let readAt = Self.wallClock()
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

    /// The full pass: every RTP leg, then every stream leg whose inbox holds something, however many.
    private func readReady(_ ready: inout [Int32], into load: inout WorkerLoad) {
        var i = 0
        while i < polled.count {
            readInPass(polled[i], index: i, into: &load)
            i += 1
        }
        var n = ready.withUnsafeMutableBufferPointer { et_epoll_wait(epoll, $0.baseAddress, Int32($0.count), 0) }
        var rounds = 0
        while n > 0 {
            for i in 0..<Int(n) {
                let fd = Int(ready[i])
                if fd < legsByDescriptor.count, let leg = legsByDescriptor[fd] {
                    readInPass(leg, index: i, into: &load)
                }
            }
            // A full list: more legs are ready than one wait returns; take them in this wake too.
            rounds += 1
            guard Int(n) == ready.count, rounds < Self.maxRoundsPerWake else { break }
            n = ready.withUnsafeMutableBufferPointer { et_epoll_wait(epoll, $0.baseAddress, Int32($0.count), 0) }
        }
    }

    /// One leg of a full pass, the `index`th.
    @inline(__always)
    private func readInPass(_ leg: LiveLeg, index: Int, into load: inout WorkerLoad) {
        // Each leg's own clock: behind, one pass over the legs can take seconds, and a leg judged by the
        // pass's start would analyse audio already too late.
        let now = Self.wallClock()
        let read = self.read(leg, now: now, into: &load)
        // Datagrams without packets: a burst of refused ones. Packets without datagrams: the jitter buffer
        // released what it held.
        if read.datagrams > 0 || read.packets > 0, !leg.schedule.onPromptList {
            enlistIfDue(leg, after: read, now: now)
        }
        // A full pass over many legs takes milliseconds: the prompt list is not kept waiting for it.
        if index % Self.legsBetweenPromptReads == Self.legsBetweenPromptReads - 1, !prompt.isEmpty {
            readPrompt(into: &load)
        }
    }

    /// Reads a leg, notes how late its audio was and whether it came in a burst.
    private func read(_ leg: LiveLeg, now: Double, into load: inout WorkerLoad) -> LiveLeg.Read {
        let read = leg.drain(now: now)
        take(read, into: &load)
        leg.schedule.noteRead(datagrams: read.datagrams, at: now)
        // A listed leg that starts bursting is due from the next tick, whatever its `promptAt`.
        if leg.schedule.onPromptList, leg.schedule.isHot(at: now) {
            nextPromptDue = min(nextPromptDue, now + Self.tick)
        }
        return read
    }

    /// After a full pass read a leg: on the prompt list when its audio comes faster than real time
    /// (a burst that would overflow its socket before the next pass), or when its next window's last
    /// audio should arrive before the next pass (read from a tick before then, its verdict waits at
    /// most a tick, not a read interval).
    private func enlistIfDue(_ leg: LiveLeg, after read: LiveLeg.Read, now: Double) {
        if leg.schedule.isHot(at: now) {
            enlist(leg, from: now)
        } else if read.packets > 0 {
            let until = leg.pipeline.secondsUntilNextWindow
            if until < promptHorizon { enlist(leg, from: read.newestArrival + until - Self.tick) }
        }
    }

    private func enlist(_ leg: LiveLeg, from time: Double) {
        leg.schedule.promptAt = time
        leg.schedule.onPromptList = true
        prompt.append(leg)
        nextPromptDue = min(nextPromptDue, time)
    }

    private func delist(at i: Int) {
        prompt[i].schedule.onPromptList = false
        prompt[i].schedule.promptAt = .infinity
        prompt.swapAt(i, prompt.count - 1)
        prompt.removeLast()
    }

    /// Reads the prompt list's legs that are due: hot ones every tick, the others from their
    /// `promptAt`. A leg leaves the list once it is neither hot nor waiting for a window's last packet
    /// (its window is out, or its audio stopped coming); the full passes read it as before.
    /// Nothing is looked at before `nextPromptDue`: a full pass asks every few dozen legs, and walking
    /// the list each time cost a cache miss or more per listed leg (2 % of the service at 2,000 legs).
    private func readPrompt(into load: inout WorkerLoad) {
        let now = Self.wallClock()
        guard now >= nextPromptDue else { return }
        var due = Double.infinity
        defer { nextPromptDue = due }
        for i in prompt.indices.reversed() {
            let leg = prompt[i]
            let wasHot = leg.schedule.isHot(at: now)
            if wasHot || (now >= leg.schedule.promptAt && leg.pipeline.secondsUntilNextWindow < promptHorizon) {
                _ = read(leg, now: now, into: &load)
            }
            guard !leg.schedule.isHot(at: now) else {
                due = min(due, now + Self.tick)
                continue
            }
            let until = leg.pipeline.secondsUntilNextWindow
            // A leg that just cooled was read every tick: its window's last packet is due in `until`.
            if wasHot, until < promptHorizon { leg.schedule.promptAt = now + until - Self.tick }
            if until >= promptHorizon || now - leg.schedule.promptAt > Self.promptPatience {
                delist(at: i)
            } else {
                due = min(due, max(leg.schedule.promptAt, now + Self.tick))
            }
        }
    }

    /// When the prompt list next has a leg to read: the earliest `promptAt`, a tick after a scan for
    /// hot legs and those already waiting.
    private var nextPromptDue = Double.infinity

    /// Legs a full pass reads between two looks at the prompt list.
    static let legsBetweenPromptReads = 32

    /// Legs read every tick: new or bursting ones, and those waiting for their next window's last packet.
    private var prompt = ContiguousArray<LiveLeg>()

    /// How long (s) a prompt-listed leg is read every tick when its audio does not come.
    static let promptPatience = 0.25

    /// How often (s) every leg with audio waiting is read (`rtp.read_interval_ms`).
    private let readInterval: Double

    /// A leg whose next window's last packet is due within this (s) of a full pass's read goes on the
    /// prompt list: the read interval when passes keep their schedule, more when they run late or long.
    private var promptHorizon: Double
    private var lastPassStart = -Double.infinity
    /// Past half a window hop every leg would stay listed: the prompt list is for the few due soon.
    static let maxPromptHorizon = 0.5

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

    /// How often a leg on the prompt list is read: what a window's verdict may wait for its last packet.
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
        if leg.media.readOnEveryPass {
            polled.append(leg)
        } else {
            if et_epoll_add(epoll, fd) != 0 {
                logger.error(
                    "epoll_ctl failed for a leg", metadata: ["leg.id": "\(leg.identity.legID)", "errno": "\(errno)"])
            }
            if Int(fd) >= legsByDescriptor.count {
                legsByDescriptor.append(contentsOf: repeatElement(nil, count: Int(fd) + 1 - legsByDescriptor.count))
            }
            legsByDescriptor[Int(fd)] = leg
        }
        legs[fd] = leg
        // Whatever arrived before registration is still queued on the socket. A new leg is read every
        // tick until its pace is known: a sender may start with a burst.
        let now = Self.wallClock()
        shedSamples += Double(leg.drain(now: now).shedSamples)
        leg.schedule.startHot(at: now)
        enlist(leg, from: now)
    }

    private func finish(_ fd: Int32, _ leg: LiveLeg, reason: String, now: Double) {
        if leg.media.readOnEveryPass {
            if let i = polled.firstIndex(where: { $0 === leg }) { polled.remove(at: i) }
        } else {
            _ = et_epoll_del(epoll, fd)
            legsByDescriptor[Int(fd)] = nil
        }
        leg.drainAll(now: now)
        leg.end(reason: reason, now: now)
        legs[fd] = nil
        if leg.schedule.onPromptList, let i = prompt.firstIndex(where: { $0 === leg }) { delist(at: i) }
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

/// A leg's place in its worker's read schedule.
struct LegReadSchedule {
    /// Read every tick until then: a new leg, or one whose packets came in a burst.
    private(set) var hotUntil = 0.0
    /// When the worker last read the leg: what a burst is measured against.
    private(set) var lastReadAt = 0.0
    /// On the worker's prompt list, to be read every tick from `promptAt`.
    var onPromptList = false
    var promptAt = Double.infinity

    /// A leg whose datagrams come faster than this (four times a 20 ms stream, twice a 10 ms one) is
    /// bursting: a sender catching up, or one sending a file at full speed. It is read every tick for
    /// `burstHotSeconds` after, so that its socket does not overflow between passes.
    static let burstPacketsPerSecond = 200.0
    static let burstHotSeconds = 1.0
    /// A new leg is read every tick this long: a sender that dumps a file at full speed fills a socket
    /// (about 290 G.711 datagrams on loopback) in milliseconds, before a full pass would read it. 0.2 s
    /// saved nothing measurable at 3,000 legs set up at once (service cores 1.246 vs 1.268, p99 the
    /// same) and lost such a burst when it started later.
    static let newLegHotSeconds = 1.0

    func isHot(at now: Double) -> Bool { now < hotUntil }

    /// A new leg is read every tick until its pace is known: a sender may start with a burst.
    mutating func startHot(at now: Double) {
        lastReadAt = now
        hotUntil = now + Self.newLegHotSeconds
    }

    /// A read of `datagrams` at `now`: more than `burstPacketsPerSecond` since the last read makes the leg
    /// hot.
    mutating func noteRead(datagrams: Int, at now: Double) {
        if Double(datagrams) > Self.burstPacketsPerSecond * max(now - lastReadAt, RTPWorker.tick) {
            hotUntil = now + Self.burstHotSeconds
        }
        lastReadAt = now
    }
}
