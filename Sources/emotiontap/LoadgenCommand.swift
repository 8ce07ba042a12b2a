import ArgumentParser
import CLinux
import EmotionCore
import Foundation
import Glibc

/// Many legs at once from one process: legs created through the control API, RTP at real-time pace
/// with staggered starts, sent in batches (sendmmsg) from one thread with no task per packet.
struct LoadgenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadgen",
        abstract: "Create N legs through the control API and stream real RTP to each at real-time pace."
    )

    @Option(help: "Host the service's RTP ports are on.")
    var to: String = "127.0.0.1"
    @Option(help: "Number of concurrent legs.")
    var legs: Int = 100
    @Option(help: "Seconds to stream.")
    var duration: Double = 30
    @Option(help: "Codec: pcmu or opus.")
    var codec: VoiceCodec = .pcmu
    @Option(help: "Drop this fraction of packets.")
    var loss: Double = 0
    @Option(help: "Control API base URL.")
    var viaApi: String = "http://127.0.0.1:8088"
    @Option(help: "Audio each leg plays in a loop (8 kHz mu-law or any WAV the reader takes).")
    var file: String = "config/samples/sample-call.wav"
    @Option(help: "Also listen for the service's events here (HOST:PORT) to count them and measure latency.")
    var listen: String?
    @Option(help: "Bearer token for the control API.")
    var token: String?
    @Option(help: "The service's process id: report its CPU (cores), resident memory per leg and UDP drops (Linux /proc).")
    var reportPid: Int32?
    @Option(help: "Also send a hostile packet (random bytes, truncated or bad headers, overrunning padding, extension or CSRC list, huge datagram, unknown payload type) after this fraction of packets, kinds in turn; counts are printed.")
    var malformed: Double = 0
    @Option(help: "Comma-separated hostile kinds to send (default: all): \(HostilePacket.allCases.map(\.rawValue).joined(separator: ", ")).")
    var malformedKinds: String?
    @Option(help: "With --report-pid: sample the service's resident memory every this many seconds and report its growth after warm-up.")
    var rssEvery: Double?

    func validate() throws {
        guard (1...20000).contains(legs) else { throw ValidationError("--legs must be 1...20000") }
        guard duration > 0, duration <= 86400 else { throw ValidationError("--duration must be positive") }
        guard (0..<1).contains(loss) else { throw ValidationError("--loss must be in 0..<1") }
        guard (0...1).contains(malformed) else { throw ValidationError("--malformed must be in 0...1") }
        _ = try hostileKinds()
        if let rssEvery { guard rssEvery >= 1, reportPid != nil else { throw ValidationError("--rss-every needs --report-pid and at least 1 s") } }
        guard codec != .pcma else { throw ValidationError("--codec must be pcmu or opus") }
    }

    func run() throws {
        let audio: MonoAudio
        do { audio = try AudioInput.load(URL(fileURLWithPath: file)) } catch {
            StandardError.line("emotiontap: \(file): \(error.description)")
            throw ExitCode(2)
        }
        let payloads = try Self.encode(audio, codec: codec)
        let api = try SimpleHTTPClient(baseURL: viaApi, token: token)
        let rssBefore = reportPid.map { ProcessSample.read($0).rssKB } ?? 0
        var legIDs: [String] = [], ports: [UInt16] = []
        let createStart = Date()
        for i in 0..<legs {
            let body = "{\"call_id\":\"loadgen-\(i / 2)\",\"role\":\"\(i % 2 == 0 ? "customer" : "agent")\",\"codec\":\"\(codec.rawValue)\"}"
            let (status, response) = try api.request("POST", "/v1/legs", body: body)
            guard status == 201, let id = Self.field("leg_id", in: response), let port = Self.field("port", in: response).flatMap({ UInt16($0) }) else {
                StandardError.line("loadgen: leg \(i) refused: \(status) \(response)")
                break
            }
            legIDs.append(id)
            ports.append(port)
        }
        StandardError.line(String(format: "loadgen: %d legs created in %.1f s", legIDs.count, Date().timeIntervalSince(createStart)))
        let listener = try listen.map { try EventListener(address: $0, legIDs: legIDs) }

        let before = reportPid.map { ProcessSample.read($0) }
        let generatorBefore = ProcessSample.read(getpid())
        let dropsBefore = ProcessSample.udpDrops(ports: Set(ports))
        let stats = try stream(payloads: payloads, ports: ports, listener: listener)
        // Windows flushed at leg end are not live latency: stop measuring here.
        listener?.freeze()
        let after = reportPid.map { ProcessSample.read($0) }
        let generatorAfter = ProcessSample.read(getpid())
        let drops = ProcessSample.udpDrops(ports: Set(ports)) - dropsBefore
        Thread.sleep(forTimeInterval: 1.5)
        for id in legIDs { _ = try? api.request("DELETE", "/v1/legs/\(id)") }
        Thread.sleep(forTimeInterval: 1.0)
        listener?.stop()

        var report = String(format: "loadgen: %d legs, %.0f s, %d packets sent (%.0f/s), %d dropped on purpose, sender lag p99 %.1f ms",
                            ports.count, stats.seconds, stats.sent, Double(stats.sent) / stats.seconds, stats.dropped, stats.lagP99 * 1000)
        if malformed > 0 {
            report += "\nloadgen: hostile packets sent: " + HostilePacket.allCases.map { "\($0.rawValue)=\(stats.hostile[$0.index])" }.joined(separator: " ")
                + " total=\(stats.hostile.reduce(0, +))"
        }
        if let listener {
            let l = listener.summary()
            report += String(format: "\nloadgen: events %d (%.1f/s; emotion %d, legs with emotion events %d/%d, leg.end %d/%d), latency window end -> datagram p50 %.1f ms p99 %.1f ms",
                             l.events, Double(l.events) / stats.seconds, l.emotion, l.legsWithEmotion, ports.count, l.legEnds, ports.count, l.p50 * 1000, l.p99 * 1000)
        }
        var growth: Double?
        if !stats.rssSamples.isEmpty {
            report += "\nloadgen: service RSS (t_s:MB) " + stats.rssSamples.map { String(format: "%.0f:%.1f", $0.0, Double($0.1) / 1024) }.joined(separator: " ")
            // Warm-up: the first fifth of the run (legs start, buffers and caches fill); growth is measured after it.
            if let base = stats.rssSamples.first(where: { $0.0 >= stats.seconds / 5 }), let last = stats.rssSamples.last, last.0 > base.0 {
                growth = 100 * Double(last.1 - base.1) / Double(base.1)
                report += String(format: "\nloadgen: RSS growth after warm-up (%.0f s -> %.0f s): %+.2f %%", base.0, last.0, growth!)
            }
        }
        print(report)
        if let before, let after, let listener {
            let l = listener.summary()
            let cores = (after.cpuSeconds - before.cpuSeconds) / stats.seconds
            let perLeg = Double(after.rssKB - rssBefore) / Double(max(1, ports.count))
            // One machine-readable line for tools/bench_live.sh.
            // The generator's own CPU, to show how much of the machine the service had.
            let generatorCores = (generatorAfter.cpuSeconds - generatorBefore.cpuSeconds) / stats.seconds
            print(String(format: "bench: legs=%d codec=%@ cores=%.3f socket_drops=%d events_per_s=%.1f latency_p50_ms=%.1f latency_p99_ms=%.1f rss_mb=%.1f rss_per_leg_kb=%.1f legs_with_events=%d leg_ends=%d generator_cores=%.3f",
                         ports.count, codec.rawValue, cores, drops, Double(l.events) / stats.seconds, l.p50 * 1000, l.p99 * 1000,
                         Double(after.rssKB) / 1024, perLeg, l.legsWithEmotion, l.legEnds, generatorCores)
                  + (growth.map { String(format: " rss_growth_pct=%.2f", $0) } ?? ""))
        }
    }

    func hostileKinds() throws -> [HostilePacket] {
        guard let malformedKinds else { return HostilePacket.allCases }
        return try malformedKinds.split(separator: ",").map {
            guard let kind = HostilePacket(rawValue: String($0)) else { throw ValidationError("unknown --malformed-kinds entry '\($0)'") }
            return kind
        }
    }

    struct StreamStats {
        var sent = 0, dropped = 0, seconds = 0.0, lagP99 = 0.0
        var hostile = [Int](repeating: 0, count: HostilePacket.allCases.count)
        var rssSamples: [(Double, Int)] = []
    }

    /// Leg i starts i/N of a second after the first, so windows (every second) do not all close at once.
    static func startOffsetMilliseconds(leg i: Int, of n: Int) -> Int { i * 1000 / max(1, n) }

    /// One thread, a 1 ms tick: each tick sends the packets of the legs whose 20 ms phase falls in it.
    func stream(payloads: [[UInt8]], ports: [UInt16], listener: EventListener?) throws -> StreamStats {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("cannot open a UDP socket") }
        defer { close(fd) }
        var sendBuffer: Int32 = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sendBuffer, socklen_t(MemoryLayout<Int32>.size))
        var address = in_addr()
        guard inet_pton(AF_INET, to == "localhost" ? "127.0.0.1" : to, &address) == 1 else { throw ValidationError("--to must be an IPv4 address") }
        let n = ports.count
        let phases = 20
        let clockStep: UInt32 = codec == .opus ? 960 : 160
        let payloadType: UInt8 = codec == .opus ? 111 : 0
        var seq = (0..<n).map { UInt16(truncatingIfNeeded: $0 &* 7919) }
        var ts = (0..<n).map { UInt32(truncatingIfNeeded: $0 &* 104_729) }
        let ssrc = (0..<n).map { UInt32(0x1000_0000 + $0) }
        var frame = [Int](repeating: 0, count: n)
        let startTick = (0..<n).map { Self.startOffsetMilliseconds(leg: $0, of: n) }
        var legsByPhase = [[Int]](repeating: [], count: phases)
        for leg in 0..<n { legsByPhase[startTick[leg] % phases].append(leg) }
        let perPhase = legsByPhase.map(\.count).max() ?? 1
        var rng = SenderRandom(seed: 42)
        // Preallocated batch: at most every leg in one tick.
        let maxPacket = max(12 + (payloads.map(\.count).max() ?? 160), HostilePacket.largestBatched)
        // Room for a hostile packet after each leg's packet when --malformed is on.
        let slots = max(1, perPhase * (malformed > 0 ? 2 : 1))
        var bytes = [UInt8](repeating: 0, count: slots * maxPacket)
        var offsets = [Int32](repeating: 0, count: slots)
        var lengths = [Int32](repeating: 0, count: slots)
        var batchPorts = [UInt16](repeating: 0, count: slots)
        var hostileKind = 0
        let kinds = try hostileKinds()
        var huge = [UInt8](repeating: 0, count: HostilePacket.hugeSize)
        var hugeTo: [(UInt16, UInt16, UInt32, UInt32)] = []
        hugeTo.reserveCapacity(64)
        var nextRSSSample = rssEvery ?? .infinity
        var stats = StreamStats()
        var lags: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        let ticks = Int(duration * 1000) + 1000
        listener?.setStart(Date().timeIntervalSince1970, phases: phases, legs: n)
        for tick in 0..<ticks {
            let due = start + UInt64(tick) * 1_000_000
            let now = DispatchTime.now().uptimeNanoseconds
            if due > now { usleep(UInt32((due - now) / 1000)) } else { lags.append(Double(now - due) / 1e9) }
            var count = 0, used = 0
            // Legs whose start offset falls on this millisecond of the 20 ms cycle.
            for leg in legsByPhase[tick % phases] where tick >= startTick[leg] {
                let payload = payloads[frame[leg] % payloads.count]
                frame[leg] += 1
                let packetSeq = seq[leg], packetTS = ts[leg]
                seq[leg] &+= 1
                ts[leg] &+= clockStep
                if loss > 0, rng.unit() < loss { stats.dropped += 1; continue }
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
                    used += RTPSender.writeHeader(into: &bytes, at: used, marker: frame[leg] == 1, payloadType: payloadType,
                                             seq: packetSeq, timestamp: packetTS, ssrc: ssrc[leg])
                    for b in payload { bytes[used] = b; used += 1 }
                    lengths[count] = Int32(12 + payload.count)
                    batchPorts[count] = ports[leg]
                    count += 1
                }
                if let kind = hostile, kind != .hugeDatagram {
                    offsets[count] = Int32(used)
                    let n = kind.write(into: &bytes, at: used, seq: packetSeq, timestamp: packetTS, ssrc: ssrc[leg], rng: &rng)
                    used += n
                    lengths[count] = Int32(n)
                    batchPorts[count] = ports[leg]
                    count += 1
                }
            }
            if let pid = reportPid, Double(tick) / 1000 >= nextRSSSample {
                stats.rssSamples.append((Double(tick) / 1000, ProcessSample.read(pid).rssKB))
                nextRSSSample += rssEvery ?? .infinity
            }
            if count > 0 {
                stats.sent += Int(et_send_batch(fd, bytes, offsets, lengths, batchPorts, address.s_addr, Int32(count)))
            }
            // Huge datagrams go after the batch, so the real packet they copy the header of is already there.
            for (port, packetSeq, packetTS, packetSSRC) in hugeTo {
                let n = HostilePacket.hugeDatagram.write(into: &huge, at: 0, seq: packetSeq, timestamp: packetTS, ssrc: packetSSRC, rng: &rng)
                var to = sockaddr_in()
                to.sin_family = sa_family_t(AF_INET)
                to.sin_port = port.bigEndian
                to.sin_addr = address
                _ = withUnsafePointer(to: &to) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, huge, n, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            hugeTo.removeAll(keepingCapacity: true)
        }
        stats.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        lags.sort()
        stats.lagP99 = lags.isEmpty ? 0 : lags[min(lags.count - 1, Int(Double(lags.count) * 0.99))]
        return stats
    }

    static func encode(_ audio: MonoAudio, codec: VoiceCodec) throws -> [[UInt8]] {
        let pcm = audio.samples.map { Int16(clamping: Int(($0 * 32768).rounded())) }
        let encoder = codec == .opus ? try OpusPayloadEncoder(sampleRate: 8000, frameMilliseconds: 20, bitrate: 16000) : nil
        var out: [[UInt8]] = []
        for offset in stride(from: 0, to: pcm.count - 160, by: 160) {
            let chunk = Array(pcm[offset..<offset + 160])
            if let encoder {
                out.append(try chunk.withUnsafeBufferPointer { Array(try encoder.encode($0)) })
            } else {
                out.append(chunk.map { G711Law.muLaw.encode($0) })
            }
        }
        return out
    }

    static func field(_ name: String, in json: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return nil }
        if let v = object[name] { return "\(v)" }
        if let rtp = object["rtp"] as? [String: Any], let v = rtp[name] { return "\(v)" }
        return nil
    }
}

/// Counts events and measures latency: from the wall-clock moment a window's last audio was sent to the datagram.
final class EventListener: @unchecked Sendable {
    // Counters and samples guarded by `lock`.
    private let fd: Int32
    private let lock = NSLock()
    private var running = true
    private var thread: Thread?
    private var events = 0, emotion = 0, legEnds = 0
    private var legsWithEmotion = Set<Int>()
    private var latencies: [Double] = []
    private var startWall = 0.0, phases = 20, legCount = 1
    private var frozen = false
    private let legIndex: [String: Int]

    init(address: String, legIDs: [String]) throws {
        var legIndex: [String: Int] = [:]
        for (i, id) in legIDs.enumerated() { legIndex[id] = i }
        self.legIndex = legIndex
        fd = try boundUDPSocket(address, receiveBuffer: 8 << 20)
        thread = Thread { [unowned self] in self.loop() }
        thread?.start()
    }

    func setStart(_ wall: Double, phases: Int, legs: Int) {
        lock.withLock { startWall = wall; self.phases = phases; legCount = legs }
    }

    func freeze() { lock.withLock { frozen = true } }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while lock.withLock({ running }) {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { continue }
            let arrival = Date().timeIntervalSince1970
            guard let o = try? JSONSerialization.jsonObject(with: Data(buffer[0..<n])) as? [String: Any] else { continue }
            let type = o["type"] as? String ?? ""
            lock.withLock {
                events += 1
                if type == "leg.end" { legEnds += 1 }
                if type == "emotion", let leg = (o["leg_id"] as? String).flatMap({ legIndex[$0] }), let end = o["end"] as? Double {
                    emotion += 1
                    legsWithEmotion.insert(leg)
                    // Leg i's first packet left at its start offset; media time runs with the wall clock.
                    let sentAt = startWall + Double(LoadgenCommand.startOffsetMilliseconds(leg: leg, of: legCount)) / 1000 + end
                    if !frozen { latencies.append(arrival - sentAt) }
                }
            }
        }
    }

    func stop() {
        lock.withLock { running = false }
        Thread.sleep(forTimeInterval: 0.3)
        close(fd)
    }

    func summary() -> (events: Int, emotion: Int, legsWithEmotion: Int, legEnds: Int, p50: Double, p99: Double) {
        lock.withLock {
            let sorted = latencies.sorted()
            func q(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
            return (events, emotion, legsWithEmotion.count, legEnds, q(0.5), q(0.99))
        }
    }
}

/// HTTP/1.1 over one kept-alive TCP connection: enough for creating thousands of legs quickly.
final class SimpleHTTPClient {
    private let host: String
    private let port: UInt16
    private let token: String?
    private var fd: Int32 = -1

    init(baseURL: String, token: String?) throws {
        guard let url = URL(string: baseURL), let host = url.host, url.scheme == "http" else {
            throw ValidationError("--via-api must be http://HOST:PORT")
        }
        self.host = host == "localhost" ? "127.0.0.1" : host
        port = UInt16(url.port ?? 80)
        self.token = token
    }

    deinit { if fd >= 0 { close(fd) } }

    private func connectIfNeeded() throws {
        guard fd < 0 else { return }
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &addr.sin_addr)
        let socketFD = fd
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(fd); fd = -1; throw ValidationError("cannot connect to the control API at \(host):\(port)") }
    }

    func request(_ method: String, _ path: String, body: String? = nil) throws -> (Int, String) {
        for attempt in 0..<2 {
            try connectIfNeeded()
            var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: keep-alive\r\n"
            if let token { text += "Authorization: Bearer \(token)\r\n" }
            if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)" } else { text += "Content-Length: 0\r\n\r\n" }
            let bytes = Array(text.utf8)
            if bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) != bytes.count || attempt > 1 {
                close(fd); fd = -1
                continue
            }
            if let response = readResponse() { return response }
            close(fd); fd = -1
        }
        throw ValidationError("no answer from the control API for \(method) \(path)")
    }

    private func readResponse() -> (Int, String)? {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { return nil }
            data += buffer[0..<n]
            guard let headerEnd = data.firstRange(of: Array("\r\n\r\n".utf8)) else { continue }
            let header = String(decoding: data[..<headerEnd.lowerBound], as: UTF8.self)
            let status = Int(header.split(separator: " ").dropFirst().first ?? "") ?? 0
            let length = header.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            if data.count - headerEnd.upperBound >= length {
                return (status, String(decoding: data[headerEnd.upperBound..<headerEnd.upperBound + length], as: UTF8.self))
            }
        }
    }
}

/// CPU time and resident memory of a process, and UDP receive drops, from Linux's /proc.
enum ProcessSample {
    static func read(_ pid: Int32) -> (cpuSeconds: Double, rssKB: Int) {
        var cpu = 0.0, rss = 0
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            // Fields after "(comm)": state is 3rd, utime 14th, stime 15th of the whole line.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) {
                cpu = (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) {
            rss = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return (cpu, rss)
    }

    /// Sum of the "drops" column of /proc/net/udp for sockets bound to `ports`.
    static func udpDrops(ports: Set<UInt16>) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/net/udp", encoding: .utf8) else { return 0 }
        var total = 0
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 13, let colon = f[1].lastIndex(of: ":"), let port = UInt16(f[1][f[1].index(after: colon)...], radix: 16),
                  ports.contains(port), let drops = Int(f[12]) else { continue }
            total += drops
        }
        return total
    }
}

/// The kinds of hostile packet `loadgen --malformed` mixes into a leg's stream, sent from the leg's
/// own sender (so an allow-list or source lock does not stop them: the parser has to).
enum HostilePacket: String, CaseIterable {
    case randomBytes = "random_bytes"
    case truncatedHeader = "truncated_header"
    case badVersion = "bad_version"
    case paddingOverrun = "padding_overrun"
    case extensionOverrun = "extension_overrun"
    case csrcOverrun = "csrc_overrun"
    case unknownPayloadType = "unknown_payload_type"
    case invalidOpusTOC = "invalid_opus_toc"
    case hugeDatagram = "huge_datagram"

    static let hugeSize = 60_000
    /// Every kind but the huge one fits a batch slot of this size.
    static let largestBatched = 200

    var index: Int { HostilePacket.allCases.firstIndex(of: self)! }

    /// Kinds with a well-formed start take the real packet's place (same sequence number); the
    /// rest arrive as extra datagrams.
    var replacesPacket: Bool {
        switch self {
        case .paddingOverrun, .extensionOverrun, .csrcOverrun, .unknownPayloadType, .invalidOpusTOC: true
        case .randomBytes, .truncatedHeader, .badVersion, .hugeDatagram: false
        }
    }

    /// Writes the packet at `bytes[i...]`; returns its length. Header fields come from the leg's
    /// stream (its SSRC and the sequence number just sent) so that they reach the leg's session.
    func write(into bytes: inout [UInt8], at i: Int, seq: UInt16, timestamp: UInt32, ssrc: UInt32, rng: inout SenderRandom) -> Int {
        func header(version: UInt8 = 2, payloadType: UInt8 = 0) -> Int {
            RTPSender.writeHeader(into: &bytes, at: i, marker: false, payloadType: payloadType, seq: seq, timestamp: timestamp, ssrc: ssrc, version: version)
        }
        func fill(_ range: Range<Int>) { for k in range { bytes[k] = UInt8(truncatingIfNeeded: rng.next()) } }
        switch self {
        case .randomBytes:
            let n = 1 + Int(rng.next() % 199)
            fill(i..<(i + n))
            return n
        case .truncatedHeader:
            let n = 1 + Int(rng.next() % 11)
            _ = header()
            return n
        case .badVersion:
            _ = header(version: UInt8(rng.next() % 2))   // 0 or 1
            fill((i + 12)..<(i + 172))
            return 172
        case .paddingOverrun:
            _ = header()
            bytes[i] |= 0x20
            fill((i + 12)..<(i + 40))
            bytes[i + 39] = 255                           // 255 bytes of padding in a 40-byte packet
            return 40
        case .extensionOverrun:
            _ = header()
            bytes[i] |= 0x10
            bytes[i + 12] = 0xBE; bytes[i + 13] = 0xDE
            bytes[i + 14] = 0xFF; bytes[i + 15] = 0xFF   // 65535 words of extension in a 24-byte packet
            fill((i + 16)..<(i + 24))
            return 24
        case .csrcOverrun:
            _ = header()
            bytes[i] |= 0x0F                              // 15 CSRCs = 60 bytes, in a 20-byte packet
            fill((i + 12)..<(i + 20))
            return 20
        case .unknownPayloadType:
            _ = header(payloadType: 77)
            fill((i + 12)..<(i + 172))
            return 172
        case .invalidOpusTOC:
            // Code 3 with a frame count of 0 (invalid in RFC 6716) under the Opus payload type.
            _ = header(payloadType: 111)
            bytes[i + 12] = 0xFB; bytes[i + 13] = 0x00
            return 14
        case .hugeDatagram:
            _ = header()
            fill((i + 12)..<(i + HostilePacket.hugeSize))
            return HostilePacket.hugeSize
        }
    }
}
