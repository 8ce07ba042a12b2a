import EmotionCore
import EmotionMedia
import EmotionSRTP
import EmotionUDP
import Foundation
import Glibc

/// Streams encoded audio as RTP to one address at real-time pace (or about 10x with `fast`), through
/// `Impairments`: the test sender behind `emotiontap send` and the demo.
public struct RTPFileSender {
    public var frames: PayloadFrames
    public var destination: UDPEndpoint
    public var impairments: Impairments
    public var fast: Bool
    public var seed: UInt64
    /// Encrypts every packet with this SDES key (AES-CM, HMAC-SHA1), as an SRTP sender would.
    public var srtp: SDESCrypto?

    public init(
        frames: PayloadFrames, destination: UDPEndpoint, impairments: Impairments = Impairments(), fast: Bool = false,
        seed: UInt64 = 1, srtp: SDESCrypto? = nil
    ) {
        self.srtp = srtp
        self.frames = frames
        self.destination = destination
        self.impairments = impairments
        self.fast = fast
        self.seed = seed
    }

    public struct Report: Sendable {
        public var sent = 0
        public var dropped = 0
        /// Packets that left after a later one.
        public var overtaken = 0
    }

    /// A packet held back by jitter: when it leaves, and its place in the stream.
    private struct Delayed {
        var due: UInt64
        var index: Int
        var packet: [UInt8]
    }

    public func run() throws(TrafficError) -> Report {
        let socket: UDPSocket
        do { socket = try UDPSocket() } catch { throw TrafficError(error.description) }
        var rng = SplitMix64(seed: seed)
        var sequence = UInt16(truncatingIfNeeded: rng.next())
        var timestamp = UInt32(truncatingIfNeeded: rng.next())
        let ssrc = UInt32(truncatingIfNeeded: rng.next())
        let ptime = UInt64(frames.frameMilliseconds)
        var loss = Impairments.GilbertLoss(loss: impairments.loss, burst: impairments.burst)
        var report = Report()
        var held: [UInt8]?
        var highestSent = -1
        var delayed: [Delayed] = []

        func send(_ packet: [UInt8]) throws(TrafficError) {
            // ECONNREFUSED only means nobody listened to the previous datagram: keep streaming.
            if !socket.send(packet, to: destination), errno != ECONNREFUSED {
                throw TrafficError("sending to \(destination) failed: \(String(cString: strerror(errno)))")
            }
        }
        /// Sends the delayed packets whose time has come, earliest first.
        func sendDue(upTo now: UInt64) throws(TrafficError) {
            while let next = delayed.indices.min(by: { delayed[$0].due < delayed[$1].due }), delayed[next].due <= now {
                let item = delayed.remove(at: next)
                try send(item.packet)
                if item.index < highestSent { report.overtaken += 1 }
                highestSent = max(highestSent, item.index)
                report.sent += 1
            }
        }

        let protector: SRTPSession?
        do {
            protector = try srtp.map { k throws(SRTPSession.SetupError) in try SRTPSession(k, direction: .outbound) }
        } catch {
            throw TrafficError("SRTP: \(error)")
        }
        let start = DispatchTime.now().uptimeNanoseconds
        for (index, payload) in frames.payloads.enumerated() {
            var packet = RTPHeader.packet(
                payloadType: frames.payloadType, marker: index == 0, sequence: sequence, timestamp: timestamp,
                ssrc: ssrc, payload: payload)
            if let protector {
                guard let protected = protector.protect(packet) else { throw TrafficError("SRTP protect failed") }
                packet = protected
            }
            sequence &+= 1
            timestamp &+= frames.timestampStep
            let due = start + UInt64(index) * ptime * 1_000_000
            if !fast {
                let now = DispatchTime.now().uptimeNanoseconds
                if due > now { usleep(UInt32((due - now) / 1000)) }
            }
            if loss.drops(&rng) {
                report.dropped += 1
                continue
            }
            if impairments.jitterMilliseconds > 0 {
                delayed.append(
                    Delayed(
                        due: due + UInt64(rng.unit() * impairments.jitterMilliseconds * 1_000_000), index: index,
                        packet: packet))
                try sendDue(upTo: DispatchTime.now().uptimeNanoseconds)
                continue
            }
            if let h = held {
                try send(packet)
                try send(h)
                held = nil
                report.sent += 2
            } else if rng.unit() < impairments.reorder {
                held = packet
            } else {
                try send(packet)
                report.sent += 1
            }
            // Even fast leaves the receiver a moment now and then (about 10x real time).
            if fast, index % 10 == 9 { usleep(UInt32(ptime * 100)) }
        }
        if let h = held {
            try send(h)
            report.sent += 1
        }
        while !delayed.isEmpty {
            usleep(1000)
            try sendDue(upTo: DispatchTime.now().uptimeNanoseconds)
        }
        return report
    }
}
