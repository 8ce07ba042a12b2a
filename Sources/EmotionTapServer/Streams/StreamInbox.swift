import CLinux
import EmotionCore
import EmotionMedia
import Foundation
import Glibc

/// The audio a stream connection (AudioSocket, a WebSocket protocol) pushes for one leg, handed to
/// the leg's worker as packets: the connection's thread pushes frames, the worker drains them on its
/// tick like an RTP socket, woken by an eventfd in its epoll set. Each frame gets the sequence number
/// and timestamp RTP would have given it, so the leg's statistics, playout, decoding and analysis are
/// the RTP path's own.
///
/// Bounded: when the worker falls behind, the oldest audio is dropped (counted as `queue_overflow`),
/// never the connection. One lock per pushed frame (20-200 ms of audio), none per drained packet.
final class StreamInbox: LegMediaSource, @unchecked Sendable {
    var readOnEveryPass: Bool { false }

    struct Frame {
        var offset: Int
        var length: Int
        var payloadType: UInt8
        var sequence: UInt16
        var timestamp: UInt32
        var arrival: Double
    }

    let fileDescriptor: Int32
    /// The listener the stream came in on (the AudioSocket or HTTP port), for `leg.start`.
    let port: Int
    let maxBytes: Int
    private let ssrc: UInt32
    private let source: SourceAddress
    // Producer side, guarded by `lock`.
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    private var frames: [Frame] = []
    private var sequence = UInt16.random(in: 0...UInt16.max)
    private var timestamp = UInt32.random(in: 0...UInt32.max)
    private var overflowed: UInt64 = 0
    private var malformed: UInt64 = 0
    // Consumer side: the worker's. The buffers are swapped with the producer's under the lock.
    private(set) var datagramsRead: UInt64 = 0
    private var drainBytes: [UInt8] = []
    private var drainFrames: [Frame] = []

    /// `maxBytes`: what may wait for the worker (8 s of G.711 by default: 64 kB).
    /// The payload type a stream leg's frames carry: PCMU's static 0, L16/8000 on dynamic 96.
    static func payloadType(of codec: VoiceCodec) -> UInt8 { codec == .pcmu ? 0 : 96 }

    init(source: SourceAddress, listenerPort: Int, maxBytes: Int = 64_000) throws(ServiceError) {
        let fd = et_eventfd_create()
        guard fd >= 0 else { throw ServiceError("eventfd failed: \(String(cString: strerror(errno)))") }
        fileDescriptor = fd
        port = listenerPort
        self.maxBytes = maxBytes
        self.source = source
        ssrc = UInt32.random(in: 1...UInt32.max)
        // Room for about half a second of G.711 on each side; a backlog grows them (to `maxBytes` at most).
        // Reserving all of `maxBytes` up front cost about 23 kB of resident memory per leg (500 Twilio
        // streams: 213 against 190 kB per leg).
        bytes.reserveCapacity(min(maxBytes, 4096))
        drainBytes.reserveCapacity(min(maxBytes, 4096))
        frames.reserveCapacity(32)
        drainFrames.reserveCapacity(32)
    }

    deinit { close(fileDescriptor) }

    /// Queues one frame of `samples` samples (on the payload type's clock). Thread-safe.
    func push(_ payload: UnsafeRawBufferPointer, payloadType: UInt8, samples: Int, arrival: Double) {
        guard !payload.isEmpty else { return }
        guard payload.count <= maxBytes else { return countMalformed() }
        let wasEmpty = lock.withLock { () -> Bool in
            let payloadBytes = payload.count
            if bytes.count + payloadBytes > maxBytes { dropOldest(toFit: payloadBytes) }
            let wasEmpty = frames.isEmpty
            frames.append(
                Frame(
                    offset: bytes.count, length: payloadBytes, payloadType: payloadType, sequence: sequence,
                    timestamp: timestamp, arrival: arrival))
            bytes.append(contentsOf: payload)
            sequence &+= 1
            timestamp &+= UInt32(truncatingIfNeeded: samples)
            return wasEmpty
        }
        if wasEmpty { et_eventfd_signal(fileDescriptor) }
    }

    /// A frame the connection could not use (bad length, bad base64, bad JSON): counted as `malformed`.
    func countMalformed() { lock.withLock { malformed &+= 1 } }

    /// Rare path (the worker is far behind): drops whole frames from the front until `count` more fit.
    private func dropOldest(toFit count: Int) {
        var dropBytes = 0
        var dropFrames = 0
        while dropFrames < frames.count, bytes.count - dropBytes + count > maxBytes {
            dropBytes += frames[dropFrames].length
            dropFrames += 1
        }
        bytes.removeFirst(min(dropBytes, bytes.count))
        frames.removeFirst(dropFrames)
        for i in frames.indices { frames[i].offset -= dropBytes }
        overflowed &+= UInt64(dropFrames)
    }

    func drain(_ handler: (RTPPacket) -> Void) -> Int {
        // Clear first: a frame pushed after the swap signals again.
        et_eventfd_clear(fileDescriptor)
        lock.withLock {
            swap(&bytes, &drainBytes)
            swap(&frames, &drainFrames)
        }
        let n = drainFrames.count
        guard n > 0 else { return 0 }
        datagramsRead &+= UInt64(n)
        drainBytes.withUnsafeBytes { all in
            for f in drainFrames {
                handler(
                    RTPPacket(
                        sequenceNumber: f.sequence, timestamp: f.timestamp, ssrc: ssrc, payloadType: f.payloadType,
                        marker: false, payload: UnsafeRawBufferPointer(rebasing: all[f.offset..<(f.offset + f.length)]),
                        arrival: f.arrival, source: source))
            }
        }
        drainBytes.removeAll(keepingCapacity: true)
        drainFrames.removeAll(keepingCapacity: true)
        return n
    }

    func drainAll(_ handler: (RTPPacket) -> Void) -> Int { drain(handler) }

    /// Payload types are the adapter's, fixed at creation.
    func update(payloadTypes: PayloadTypes) {}

    func addDrops(to counters: inout LegCounters, _ statistics: inout ReceptionStatistics) {
        lock.withLock {
            counters.queueOverflow &+= overflowed  // beside what the worker shed as too late
            counters.malformed = malformed
        }
    }
}
