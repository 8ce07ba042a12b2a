import CLinux
import EmotionProtocol
import EmotionUDP
import Foundation

/// Counts a service's events on a UDP socket and measures latency: from the moment a window's last
/// audio was due to the arrival of its `emotion` datagram, both on the monotonic clock the sender
/// paces by (the wall clock may be slewed during a run: 0.5 % here once, 100 ms over a 20 s step);
/// and, where the sender says when that audio actually left (`SendLags`), from then.
///
/// Arrival is the kernel's stamp on the datagram (SO_TIMESTAMPNS): when the kernel took it in for the
/// consumer's socket (on loopback, as the service's send handed it over). On a full box the listener's
/// own thread may run tens of ms later; that lag is the consumer's, and is measured apart (`p99Read`:
/// arrival taken when the listener read it).
public final class EventListener: @unchecked Sendable {
    // Counters and samples are guarded by `lock`; the socket is read by one thread.
    private let socket: UDPSocket
    private let lock = NSLock()
    private var running = true
    private var finished = false
    private var thread: Thread?
    private var events = 0, emotion = 0, legEnds = 0, undecodable = 0
    private var legsWithEmotion = Set<Int>()
    private var latencies: [Double] = []
    private var latenciesFromSend: [Double] = []
    /// From the schedule to when the listener's thread read the datagram (the measure before kernel stamps).
    private var latenciesRead: [Double] = []
    private let sendLags: SendLags?
    private var startSeconds = 0.0, legCount = 1
    private var frozen = false
    private var legIndex: [String: Int]
    /// Stream legs get their ids from the service: leg i is the one whose `leg.start` names stream
    /// `loadgen-i`.
    private let learnsStreamLegs: Bool
    /// When leg i's first packet left, relative to the start (the generator staggers them).
    private let startOffset: @Sendable (Int, Int) -> Double

    public init(
        address: UDPEndpoint, legIDs: [String], learnsStreamLegs: Bool = false, sendLags: SendLags? = nil,
        startOffset: @escaping @Sendable (Int, Int) -> Double
    ) throws(TrafficError) {
        self.sendLags = sendLags
        var legIndex: [String: Int] = [:]
        for (i, id) in legIDs.enumerated() { legIndex[id] = i }
        self.legIndex = legIndex
        self.learnsStreamLegs = learnsStreamLegs
        self.startOffset = startOffset
        do { socket = try UDPSocket(bindingTo: address, receiveBuffer: 8 << 20) } catch {
            throw TrafficError(error.description)
        }
        _ = et_enable_receive_timestamps(socket.fileDescriptor)
        thread = Thread { [unowned self] in self.loop() }
        thread?.start()
    }

    /// The port it listens on (for a listener bound to port 0).
    public var port: UInt16 { socket.localPort }

    /// When the sender's schedule began, in `DispatchTime` uptime seconds.
    func setStart(_ seconds: Double, legs: Int) {
        lock.withLock {
            startSeconds = seconds
            legCount = legs
        }
    }

    /// Windows flushed at leg end are not live latency: stop measuring.
    func freeze() { lock.withLock { frozen = true } }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var seconds: Int64 = 0, nanoseconds: Int64 = 0
        while lock.withLock({ running }) {
            let received = buffer.withUnsafeMutableBytes {
                et_recv_stamped(socket.fileDescriptor, $0.baseAddress, $0.count, &seconds, &nanoseconds)
            }
            guard received > 0 else { continue }
            let n = Int(received)
            let read = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
            // The kernel stamps on the wall clock: moved onto the monotonic one by their offset now (a slew
            // between the two readings, microseconds apart, is nothing).
            var arrival = read
            if seconds > 0 {
                var wall = timespec()
                clock_gettime(CLOCK_REALTIME, &wall)
                let stamp = Double(seconds) + Double(nanoseconds) / 1e9
                arrival = min(read, read - (Double(wall.tv_sec) + Double(wall.tv_nsec) / 1e9 - stamp))
            }
            // Nearly every datagram is an emotion event: read its leg and window end without the JSON
            // decoder, which cost a quarter of the generator's CPU (the rarer events are decoded).
            if let (legID, end) = buffer.withUnsafeBufferPointer({ Self.emotionHeadline($0, count: n) }) {
                lock.withLock {
                    events += 1
                    guard let leg = legIndex[legID] else { return }
                    emotion += 1
                    legsWithEmotion.insert(leg)
                    measure(leg: leg, end: end, arrival: arrival, read: read)
                }
                continue
            }
            guard let event = try? Event(decoding: Data(buffer[0..<n])) else {
                lock.withLock { undecodable += 1 }
                continue
            }
            lock.withLock {
                events += 1
                switch event.body {
                case .legStart(let start):
                    if learnsStreamLegs, let id = event.leg?.legID, let stream = start.stream?.id,
                        stream.hasPrefix("loadgen-"), let i = Int(stream.dropFirst(8))
                    {
                        legIndex[id] = i
                    }
                case .legEnd: legEnds += 1
                case .emotion(let e):
                    guard let leg = event.leg.flatMap({ legIndex[$0.legID] }) else { break }
                    emotion += 1
                    legsWithEmotion.insert(leg)
                    measure(leg: leg, end: e.reading.end, arrival: arrival, read: read)
                default: break
                }
            }
        }
        lock.withLock { finished = true }
    }

    /// Under `lock`. Leg i's first packet was due at its start offset, and media time runs with the
    /// sender's clock: the window's audio was due to end at offset + end, and ended that plus the lag of
    /// the packet that ends it.
    private func measure(leg: Int, end: Double, arrival: Double, read: Double) {
        guard !frozen else { return }
        let due = startSeconds + startOffset(leg, legCount) + end
        latencies.append(arrival - due)
        latenciesRead.append(read - due)
        let second = Int(end.rounded())
        let lag = abs(end - Double(second)) < 0.001 ? sendLags?.lag(leg: leg, second: second) : nil
        latenciesFromSend.append(arrival - due - (lag ?? 0))
    }

    /// The leg id and window end of an emotion event as the service writes it (`{"v":1,"type":"emotion",`
    /// first, `leg_id` before `end`, no escapes in the id), or nil for anything else.
    public static func emotionHeadline(_ bytes: UnsafeBufferPointer<UInt8>, count: Int) -> (String, Double)? {
        let prefix = Array(#"{"v":1,"type":"emotion","#.utf8)
        guard count > prefix.count, bytes.prefix(prefix.count).elementsEqual(prefix) else { return nil }
        let text = UnsafeBufferPointer(rebasing: bytes[0..<count])
        func find(_ needle: String, from: Int) -> Int? {
            let n = Array(needle.utf8)
            var i = from
            while i + n.count <= text.count {
                if text[i] == n[0], text[(i + 1)..<(i + n.count)].elementsEqual(n[1...]) { return i + n.count }
                i += 1
            }
            return nil
        }
        guard let idStart = find(#","leg_id":""#, from: prefix.count),
            let idEnd = text[idStart...].firstIndex(of: UInt8(ascii: "\"")),
            !text[idStart..<idEnd].contains(UInt8(ascii: "\\")),
            let endStart = find(#","end":"#, from: idEnd)
        else { return nil }
        var numberEnd = endStart
        while numberEnd < text.count, text[numberEnd] != UInt8(ascii: ","), text[numberEnd] != UInt8(ascii: "}") {
            numberEnd += 1
        }
        guard let end = Double(String(decoding: text[endStart..<numberEnd], as: UTF8.self)) else { return nil }
        return (String(decoding: text[idStart..<idEnd], as: UTF8.self), end)
    }

    /// Stops reading (within the socket's receive timeout).
    public func stop() {
        lock.withLock { running = false }
        for _ in 0..<50 where !lock.withLock({ finished }) { Thread.sleep(forTimeInterval: 0.02) }
    }

    public struct Summary: Sendable {
        public var events: Int
        public var emotion: Int
        public var legsWithEmotion: Int
        public var legEnds: Int
        /// Datagrams that were not protocol-v1 events.
        public var undecodable: Int
        /// From when a window's audio was due to end (the sender's schedule).
        public var p50: Double
        public var p99: Double
        /// From when it actually ended: the sender's lag behind its schedule taken out (the same as
        /// `p50`/`p99` for a sender that does not report it).
        public var p50FromSend: Double
        public var p99FromSend: Double
        /// From the schedule to when the listener's thread read the event (its own scheduling lag included).
        public var p99Read: Double
    }

    public func summary() -> Summary {
        lock.withLock {
            let sorted = latencies.sorted(), fromSend = latenciesFromSend.sorted(), read = latenciesRead.sorted()
            func q(_ sorted: [Double], _ p: Double) -> Double {
                sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
            }
            return Summary(
                events: events, emotion: emotion, legsWithEmotion: legsWithEmotion.count, legEnds: legEnds,
                undecodable: undecodable, p50: q(sorted, 0.5), p99: q(sorted, 0.99),
                p50FromSend: q(fromSend, 0.5), p99FromSend: q(fromSend, 0.99), p99Read: q(read, 0.99))
        }
    }
}
