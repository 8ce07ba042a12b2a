import ArgumentParser
import EmotionCore
import CLinux
import Foundation
import Glibc

struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Stream a WAV file as RTP to HOST:PORT at real-time pace, to test a setup or feed the demo."
    )

    @Argument(help: "WAV file (any format the reader takes; resampled to 8 kHz).")
    var file: String
    @Option(help: "Destination HOST:PORT.")
    var to: String
    @Option(help: "Codec: pcmu, pcma or opus.")
    var codec: VoiceCodec = .pcmu
    @Option(help: "Milliseconds of audio per packet (10-60; Opus: 10, 20, 40 or 60).")
    var ptime: Int = 20
    @Option(help: "RTP payload type for Opus.")
    var opusPayloadType: Int = 111
    @Flag(help: "Send as fast as possible instead of at real-time pace.")
    var fast = false
    @Option(help: "Drop this fraction of packets (testing concealment).")
    var loss: Double = 0
    @Option(help: "Mean length of a loss burst in packets (Gilbert model; 1 = independent losses).")
    var burst: Double = 1
    @Option(help: "Swap this fraction of packets with their successor (testing reordering).")
    var reorder: Double = 0
    @Option(help: "Delay each packet by a random 0...this many milliseconds (network jitter: later packets overtake).")
    var jitter: Double = 0
    @Option(help: "Random seed for --loss and --reorder.")
    var seed: UInt64 = 1
    @Option(help: "Stereo files: mix, left, right or a channel index.")
    var channel: String = "mix"

    func validate() throws {
        guard (10...60).contains(ptime), ptime % 10 == 0 else { throw ValidationError("--ptime must be 10, 20, 30, 40, 50 or 60") }
        if codec == .opus, ![10, 20, 40, 60].contains(ptime) { throw ValidationError("Opus --ptime must be 10, 20, 40 or 60") }
        guard (0..<1).contains(loss), (0..<1).contains(reorder) else { throw ValidationError("--loss and --reorder must be in 0..<1") }
        guard burst >= 1, burst <= 100 else { throw ValidationError("--burst must be in 1...100 packets") }
        guard (0...2000).contains(jitter) else { throw ValidationError("--jitter must be in 0...2000 ms") }
        guard jitter == 0 || (reorder == 0 && !fast) else { throw ValidationError("--jitter works at real-time pace, without --reorder or --fast") }
        guard (96...127).contains(opusPayloadType) else { throw ValidationError("--opus-payload-type must be dynamic (96-127)") }
    }

    /// Sends the delayed packets whose time has come, earliest first; returns how many, and counts
    /// those sent after a later packet (overtaken).
    private func sendDue(_ queue: inout [(due: UInt64, index: Int, packet: [UInt8])], upTo now: UInt64, _ sender: RTPSender,
                         _ highestSent: inout Int, _ overtaken: inout Int) throws -> Int {
        var count = 0
        while let next = queue.indices.min(by: { queue[$0].due < queue[$1].due }), queue[next].due <= now {
            let item = queue.remove(at: next)
            try sender.send(item.packet)
            if item.index < highestSent { overtaken += 1 }
            highestSent = max(highestSent, item.index)
            count += 1
        }
        return count
    }

    func run() throws {
        var channelOption = ChannelOption()
        channelOption.channel = channel
        let selection = try channelOption.selection()
        let audio: MonoAudio
        do throws(AudioFileError) { audio = try AudioInput.load(URL(fileURLWithPath: file), channel: selection) } catch {
            StandardError.line("emotiontap: \(file): \(error.description)")
            throw ExitCode(2)
        }
        let sender: RTPSender
        do { sender = try RTPSender(destination: to) } catch {
            StandardError.line("emotiontap: \(error)")
            throw ExitCode(2)
        }
        let pcm = audio.samples.map { Int16(clamping: Int(($0 * 32768).rounded())) }
        let frame = 8 * ptime
        let payloadType: UInt8 = switch codec { case .pcmu: 0; case .pcma: 8; case .opus: UInt8(opusPayloadType) }
        let clockStep = UInt32(codec == .opus ? 48 * ptime : 8 * ptime)
        let encoder = codec == .opus ? try OpusPayloadEncoder(sampleRate: 8000, frameMilliseconds: ptime, bitrate: 16000) : nil
        var rng = SenderRandom(seed: seed)
        var sequence = UInt16(truncatingIfNeeded: rng.next())
        var timestamp = UInt32(truncatingIfNeeded: rng.next())
        let ssrc = UInt32(truncatingIfNeeded: rng.next())
        var held: [UInt8]?
        var sent = 0, dropped = 0, overtaken = 0
        var highestSent = -1
        // Gilbert model: a burst ends with probability 1/burst; one starts at the rate that makes the
        // long-run loss fraction `loss`.
        let endBurst = 1 / burst
        let startBurst = loss >= 1 ? 1 : min(1, loss / (burst * (1 - loss)))
        var inBurst = false
        // With --jitter every packet gets a departure time; they leave in that order.
        var delayed: [(due: UInt64, index: Int, packet: [UInt8])] = []
        let start = DispatchTime.now().uptimeNanoseconds
        var chunk = [Int16](repeating: 0, count: frame)
        for (index, offset) in stride(from: 0, to: pcm.count, by: frame).enumerated() {
            for i in 0..<frame { chunk[i] = offset + i < pcm.count ? pcm[offset + i] : 0 }
            let payload: [UInt8]
            switch codec {
            case .pcmu: payload = chunk.map { G711Law.muLaw.encode($0) }
            case .pcma: payload = chunk.map { G711Law.aLaw.encode($0) }
            case .opus: payload = try chunk.withUnsafeBufferPointer { Array(try encoder!.encode($0)) }
            }
            let packet = RTPSender.packet(payloadType: payloadType, marker: index == 0, sequence: sequence, timestamp: timestamp,
                                          ssrc: ssrc, payload: payload)
            sequence &+= 1
            timestamp &+= clockStep
            if !fast {
                let due = start + UInt64(index) * UInt64(ptime) * 1_000_000
                let now = DispatchTime.now().uptimeNanoseconds
                if due > now { usleep(UInt32((due - now) / 1000)) }
            }
            inBurst = inBurst ? rng.unit() >= endBurst : rng.unit() < startBurst
            if inBurst {
                dropped += 1
                continue
            }
            if jitter > 0 {
                let base = start + UInt64(index) * UInt64(ptime) * 1_000_000
                delayed.append((base + UInt64(rng.unit() * jitter * 1_000_000), index, packet))
                sent += try sendDue(&delayed, upTo: DispatchTime.now().uptimeNanoseconds, sender, &highestSent, &overtaken)
                continue
            }
            if let h = held {
                try sender.send(packet)
                try sender.send(h)
                held = nil
                sent += 2
            } else if rng.unit() < reorder {
                held = packet
            } else {
                try sender.send(packet)
                sent += 1
            }
            // Even --fast leaves the receiver a moment now and then (about 10x real time).
            if fast, index % 10 == 9 { usleep(UInt32(ptime * 100)) }
        }
        if let h = held { try sender.send(h); sent += 1 }
        while !delayed.isEmpty {
            usleep(1000)
            sent += try sendDue(&delayed, upTo: DispatchTime.now().uptimeNanoseconds, sender, &highestSent, &overtaken)
        }
        StandardError.line(String(format: "send: %d packets to %@ (%@, %d ms), %d dropped, %d overtaken, %.1f s of audio",
                                  sent, to, codec.rawValue, ptime, dropped, overtaken, audio.duration))
    }
}

extension VoiceCodec: ExpressibleByArgument {}


/// A small seeded generator for the sender's ids and test impairments.
struct SenderRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// Plain UDP RTP sending (the service never sends; this is the test sender).
final class RTPSender {
    private let socket: Int32
    private var address = sockaddr_in()

    init(destination: String) throws {
        let parts = destination.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw ValidationError("--to must be HOST:PORT") }
        let host = parts[0] == "localhost" ? "127.0.0.1" : String(parts[0])
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw ValidationError("\(host) is not an IPv4 address") }
        socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard socket >= 0 else { throw ValidationError("cannot open a UDP socket") }
    }

    deinit { close(socket) }

    func send(_ packet: [UInt8]) throws {
        let n = packet.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(socket, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        // ECONNREFUSED only means nobody listened to the previous datagram: keep streaming.
        if n < 0, errno != ECONNREFUSED { throw ValidationError("send failed: errno \(errno)") }
    }

    static func packet(payloadType: UInt8, marker: Bool, sequence: UInt16, timestamp: UInt32, ssrc: UInt32, payload: [UInt8]) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 12)
        _ = writeHeader(into: &p, at: 0, marker: marker, payloadType: payloadType & 0x7f, seq: sequence, timestamp: timestamp, ssrc: ssrc)
        return p + payload
    }

    /// The 12-byte RTP header, written in place (no array per packet); returns 12.
    @inline(__always)
    static func writeHeader(into bytes: inout [UInt8], at i: Int, marker: Bool, payloadType: UInt8,
                            seq: UInt16, timestamp: UInt32, ssrc: UInt32, version: UInt8 = 2) -> Int {
        bytes[i] = version << 6
        bytes[i + 1] = marker ? 0x80 | payloadType : payloadType
        bytes[i + 2] = UInt8(seq >> 8); bytes[i + 3] = UInt8(seq & 0xff)
        bytes[i + 4] = UInt8(timestamp >> 24); bytes[i + 5] = UInt8((timestamp >> 16) & 0xff)
        bytes[i + 6] = UInt8((timestamp >> 8) & 0xff); bytes[i + 7] = UInt8(timestamp & 0xff)
        bytes[i + 8] = UInt8(ssrc >> 24); bytes[i + 9] = UInt8((ssrc >> 16) & 0xff)
        bytes[i + 10] = UInt8((ssrc >> 8) & 0xff); bytes[i + 11] = UInt8(ssrc & 0xff)
        return 12
    }
}
