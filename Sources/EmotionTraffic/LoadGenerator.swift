import CLinux
import EmotionCore
import EmotionMedia
import EmotionUDP
import Foundation
import Glibc

/// Many legs at once from one process: legs created through the control API, RTP at real-time pace
/// with staggered starts, sent in batches (sendmmsg) from one thread with no task per packet.
public struct LoadGenerator {
    public struct Options: Sendable {
        public var host = "127.0.0.1"
        public var legs = 100
        public var duration = 30.0
        public var codec = VoiceCodec.pcmu
        public var loss = 0.0
        public var apiURL = "http://127.0.0.1:8088"
        public var token: String?
        /// Listen for the service's events here to count them and measure latency.
        public var listen: UDPEndpoint?
        /// The service's process: report its CPU, memory per leg and UDP drops (Linux /proc).
        public var reportPID: Int32?
        /// A hostile packet after this fraction of packets, `hostileKinds` in turn.
        public var malformed = 0.0
        public var hostileKinds = HostilePacket.allCases
        /// Sample the service's resident memory every this many seconds.
        public var rssEvery: Double?
        /// Stream the legs over a WebSocket protocol instead of RTP (`twilio`: base64 mu-law in JSON).
        public var stream: String?
        public init() {}
    }

    public let options: Options
    public let audio: MonoAudio

    public init(options: Options, audio: MonoAudio) {
        self.options = options
        self.audio = audio
    }

    /// Leg i starts i/N of a second after the first, so windows (every second) do not all close at once.
    public static func startOffsetMilliseconds(leg i: Int, of n: Int) -> Int { i * 1000 / max(1, n) }

    /// Creates the legs, streams, ends the legs; returns the report's lines.
    public func run(progress: (String) -> Void) async throws(TrafficError) -> [String] {
        if options.stream != nil { return try await runStreams(progress: progress) }
        let frames = try PayloadFrames(audio, codec: options.codec, padLastFrame: false)
        let destination: UDPEndpoint
        do { destination = try UDPEndpoint(host: options.host, port: 9) } catch {
            throw TrafficError(error.description)
        }
        let api = try ControlClient(baseURL: options.apiURL, token: options.token)
        let rssBefore = options.reportPID.map { ProcessSample.read($0).rssKB } ?? 0
        var legIDs: [String] = [], ports: [UInt16] = []
        let createStart = Date()
        for i in 0..<options.legs {
            do {
                let leg = try await api.createLeg(
                    callID: "loadgen-\(i / 2)", role: i % 2 == 0 ? "customer" : "agent", codec: options.codec)
                legIDs.append(leg.legID)
                ports.append(leg.rtp.port)
            } catch {
                progress("loadgen: leg \(i) \(error)")
                break
            }
        }
        progress(
            String(format: "loadgen: %d legs created in %.1f s", legIDs.count, Date().timeIntervalSince(createStart)))
        let sendLags = SendLags(legs: legIDs.count, seconds: Int(options.duration) + 3)
        let listener = try options.listen.map { address throws(TrafficError) in
            try EventListener(address: address, legIDs: legIDs, sendLags: sendLags) { leg, legs in
                Double(Self.startOffsetMilliseconds(leg: leg, of: legs)) / 1000
            }
        }

        let before = options.reportPID.map { ProcessSample.read($0) }
        let generatorBefore = ProcessSample.read(getpid())
        let dropsBefore = ProcessSample.udpDrops(ports: Set(ports))
        let stats = try stream(
            frames, to: destination.address.sin_addr, ports: ports, listener: listener, sendLags: sendLags)
        listener?.freeze()
        let after = options.reportPID.map { ProcessSample.read($0) }
        let generatorAfter = ProcessSample.read(getpid())
        let drops = ProcessSample.udpDrops(ports: Set(ports)) - dropsBefore
        try? await Task.sleep(for: .milliseconds(1500))
        for id in legIDs { await api.endLeg(id) }
        try? await Task.sleep(for: .milliseconds(1000))
        listener?.stop()

        return report(
            legs: ports.count, stats: stats, listener: listener, before: before, after: after,
            generatorSeconds: generatorAfter.cpuSeconds - generatorBefore.cpuSeconds, drops: drops, rssBefore: rssBefore
        )
    }

    /// The report's lines, and the `bench:` line tools/bench_live.sh reads.
    func report(
        legs: Int, stats: StreamStats, listener: EventListener?, before: (cpuSeconds: Double, rssKB: Int)?,
        after: (cpuSeconds: Double, rssKB: Int)?,
        generatorSeconds: Double, drops: Int, rssBefore: Int, rssDuring: Int? = nil
    ) -> [String] {
        let ports = [Int](repeating: 0, count: legs)
        let codec = options.stream.map { "\(options.codec.rawValue)/\($0)" } ?? options.codec.rawValue
        var report = [
            String(
                format:
                    "loadgen: %d legs, %.0f s, %d packets sent (%.0f/s), %d dropped on purpose, sender lag p99 %.1f ms",
                ports.count, stats.seconds, stats.sent, Double(stats.sent) / stats.seconds, stats.dropped,
                stats.lagP99 * 1000)
        ]
        if options.malformed > 0 {
            report.append(
                "loadgen: hostile packets sent: "
                    + HostilePacket.allCases.map { "\($0.rawValue)=\(stats.hostile[$0.index])" }.joined(separator: " ")
                    + " total=\(stats.hostile.reduce(0, +))")
        }
        let l = listener?.summary()
        if let l {
            report.append(
                String(
                    format:
                        "loadgen: events %d (%.1f/s; emotion %d, legs with emotion events %d/%d, leg.end %d/%d), "
                        + "latency window end -> datagram at the socket p50 %.1f ms p99 %.1f ms (from the schedule), "
                        + "p50 %.1f ms p99 %.1f ms (from the actual send), p99 %.1f ms to the listener's read",
                    l.events, Double(l.events) / stats.seconds, l.emotion, l.legsWithEmotion, ports.count, l.legEnds,
                    ports.count,
                    l.p50 * 1000, l.p99 * 1000, l.p50FromSend * 1000, l.p99FromSend * 1000, l.p99Read * 1000))
        }
        var growth: Double?
        if !stats.rssSamples.isEmpty {
            report.append(
                "loadgen: service RSS (t_s:MB) "
                    + stats.rssSamples.map { String(format: "%.0f:%.1f", $0.0, Double($0.1) / 1024) }.joined(
                        separator: " "))
            // Warm-up: the first fifth of the run (legs start, buffers and caches fill); growth is measured after it.
            if let base = stats.rssSamples.first(where: { $0.0 >= stats.seconds / 5 }),
                let last = stats.rssSamples.last, last.0 > base.0
            {
                let g = 100 * Double(last.1 - base.1) / Double(base.1)
                growth = g
                report.append(
                    String(format: "loadgen: RSS growth after warm-up (%.0f s -> %.0f s): %+.2f %%", base.0, last.0, g))
            }
        }
        if let before, let after, let l {
            let cores = (after.cpuSeconds - before.cpuSeconds) / stats.seconds
            let perLeg = Double((rssDuring ?? after.rssKB) - rssBefore) / Double(max(1, ports.count))
            // The generator's own CPU, to show how much of the machine the service had.
            let generatorCores = generatorSeconds / stats.seconds
            // One machine-readable line for tools/bench_live.sh.
            report.append(
                String(
                    format:
                        "bench: legs=%d codec=%@ cores=%.3f socket_drops=%d events_per_s=%.1f latency_p50_ms=%.1f "
                        + "latency_p99_ms=%.1f rss_mb=%.1f rss_per_leg_kb=%.1f legs_with_events=%d leg_ends=%d "
                        + "generator_cores=%.3f latency_sent_p50_ms=%.1f latency_sent_p99_ms=%.1f sender_lag_p99_ms=%.1f "
                        + "latency_read_p99_ms=%.1f",
                    ports.count, codec, cores, drops, Double(l.events) / stats.seconds, l.p50 * 1000,
                    l.p99 * 1000,
                    Double(rssDuring ?? after.rssKB) / 1024, perLeg, l.legsWithEmotion, l.legEnds, generatorCores,
                    l.p50FromSend * 1000, l.p99FromSend * 1000, stats.lagP99 * 1000, l.p99Read * 1000)
                    + (growth.map { String(format: " rss_growth_pct=%.2f", $0) } ?? ""))
        }
        return report
    }

    struct StreamStats {
        var sent = 0, dropped = 0, seconds = 0.0, lagP99 = 0.0
        var hostile = [Int](repeating: 0, count: HostilePacket.allCases.count)
        var rssSamples: [(Double, Int)] = []
    }

    /// One thread, a 1 ms tick: each tick sends the packets of the legs whose 20 ms phase falls in it.
    func stream(
        _ frames: PayloadFrames, to address: in_addr, ports: [UInt16], listener: EventListener?,
        sendLags: SendLags? = nil
    ) throws(TrafficError) -> StreamStats {
        let socket: UDPSocket
        do { socket = try UDPSocket(sendBuffer: 4 << 20) } catch { throw TrafficError(error.description) }
        let fd = socket.fileDescriptor
        let payloads = frames.payloads
        let n = ports.count
        let phases = 20
        let clockStep = frames.timestampStep
        let payloadType = frames.payloadType
        var seq = (0..<n).map { UInt16(truncatingIfNeeded: $0 &* 7919) }
        var ts = (0..<n).map { UInt32(truncatingIfNeeded: $0 &* 104_729) }
        let ssrc = (0..<n).map { UInt32(0x1000_0000 + $0) }
        var frame = [Int](repeating: 0, count: n)
        let startTick = (0..<n).map { Self.startOffsetMilliseconds(leg: $0, of: n) }
        var legsByPhase = [[Int]](repeating: [], count: phases)
        for leg in 0..<n { legsByPhase[startTick[leg] % phases].append(leg) }
        let perPhase = legsByPhase.map(\.count).max() ?? 1
        var rng = SplitMix64(seed: 42)
        // Preallocated batch: at most every leg in one tick.
        let maxPacket = max(RTPHeader.size + (payloads.map(\.count).max() ?? 160), HostilePacket.largestBatched)
        // Room for a hostile packet after each leg's packet when malformed is on.
        let malformed = options.malformed
        let slots = max(1, perPhase * (malformed > 0 ? 2 : 1))
        var bytes = [UInt8](repeating: 0, count: slots * maxPacket)
        var offsets = [Int32](repeating: 0, count: slots)
        var lengths = [Int32](repeating: 0, count: slots)
        var batchPorts = [UInt16](repeating: 0, count: slots)
        var hostileKind = 0
        let kinds = options.hostileKinds
        var huge = [UInt8](repeating: 0, count: HostilePacket.hugeSize)
        var hugeTo: [(UInt16, UInt16, UInt32, UInt32)] = []
        hugeTo.reserveCapacity(64)
        var nextRSSSample = options.rssEvery ?? .infinity
        var stats = StreamStats()
        var lags: [Double] = []
        // The legs of this tick whose packet ends a second of their media, and which second.
        var endingLegs = [Int](repeating: 0, count: slots), endingSeconds = [Int](repeating: 0, count: slots)
        let start = DispatchTime.now().uptimeNanoseconds
        let ticks = Int(options.duration * 1000) + 1000
        listener?.setStart(Double(start) / 1e9, legs: n)
        for tick in 0..<ticks {
            let due = start + UInt64(tick) * 1_000_000
            let now = DispatchTime.now().uptimeNanoseconds
            if due > now { usleep(UInt32((due - now) / 1000)) } else { lags.append(Double(now - due) / 1e9) }
            var count = 0, used = 0, ending = 0
            // Legs whose start offset falls on this millisecond of the 20 ms cycle.
            for leg in legsByPhase[tick % phases] where tick >= startTick[leg] {
                let payload = payloads[frame[leg] % payloads.count]
                frame[leg] += 1
                if frame[leg] % SendLags.packetsPerSecond == 0, ending < endingLegs.count {
                    endingLegs[ending] = leg
                    endingSeconds[ending] = frame[leg] / SendLags.packetsPerSecond
                    ending += 1
                }
                let packetSeq = seq[leg], packetTS = ts[leg]
                seq[leg] &+= 1
                ts[leg] &+= clockStep
                if options.loss > 0, rng.unit() < options.loss {
                    stats.dropped += 1
                    continue
                }
                var hostile: HostilePacket?
                if malformed > 0, rng.unit() < malformed {
                    hostile = kinds[hostileKind % kinds.count]
                    hostileKind += 1
                    stats.hostile[hostile!.index] += 1
                }
                if hostile == .hugeDatagram { hugeTo.append((ports[leg], packetSeq, packetTS, ssrc[leg])) }
                // A kind that looks like this leg's packet goes in its place (corrupted in transit: the
                // leg conceals 20 ms); the others come on top of the real packet.
                if hostile?.replacesPacket != true {
                    offsets[count] = Int32(used)
                    used += RTPHeader.write(
                        into: &bytes, at: used, marker: frame[leg] == 1, payloadType: payloadType,
                        sequence: packetSeq, timestamp: packetTS, ssrc: ssrc[leg])
                    for b in payload {
                        bytes[used] = b
                        used += 1
                    }
                    lengths[count] = Int32(RTPHeader.size + payload.count)
                    batchPorts[count] = ports[leg]
                    count += 1
                }
                if let kind = hostile, kind != .hugeDatagram {
                    offsets[count] = Int32(used)
                    let n = kind.write(
                        into: &bytes, at: used, seq: packetSeq, timestamp: packetTS, ssrc: ssrc[leg], rng: &rng)
                    used += n
                    lengths[count] = Int32(n)
                    batchPorts[count] = ports[leg]
                    count += 1
                }
            }
            if let pid = options.reportPID, Double(tick) / 1000 >= nextRSSSample {
                stats.rssSamples.append((Double(tick) / 1000, ProcessSample.read(pid).rssKB))
                nextRSSSample += options.rssEvery ?? .infinity
            }
            if count > 0 {
                stats.sent += Int(et_send_batch(fd, bytes, offsets, lengths, batchPorts, address.s_addr, Int32(count)))
            }
            if ending > 0, let sendLags {
                let sent = DispatchTime.now().uptimeNanoseconds
                sendLags.record(
                    legs: endingLegs[0..<ending], seconds: endingSeconds[0..<ending],
                    lag: sent > due ? Double(sent - due) / 1e9 : 0)
            }
            // Huge datagrams go after the batch, so the real packet they copy the header of is already there.
            for (port, packetSeq, packetTS, packetSSRC) in hugeTo {
                let n = HostilePacket.hugeDatagram.write(
                    into: &huge, at: 0, seq: packetSeq, timestamp: packetTS, ssrc: packetSSRC, rng: &rng)
                if let to = try? UDPEndpoint(host: options.host, port: port) {
                    _ = huge.withUnsafeBytes { socket.send(UnsafeRawBufferPointer(rebasing: $0[0..<n]), to: to) }
                }
            }
            hugeTo.removeAll(keepingCapacity: true)
        }
        stats.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        lags.sort()
        stats.lagP99 = lags.isEmpty ? 0 : lags[min(lags.count - 1, Int(Double(lags.count) * 0.99))]
        return stats
    }
}
