import EmotionProtocol
import EmotionUDP
import Foundation

/// A UDP socket on loopback that collects event datagrams, as a consumer would: each one decoded
/// as a protocol-v1 event (and counted when it is not one).
public final class EventReceiver: @unchecked Sendable {
    // `datagrams`, `decoded`, `failures` and `decodedCount` are guarded by `lock`; the socket is read by one
    // background thread, which only stores what it reads: decoding there (a debug build, a busy machine)
    // let bursts overflow the socket's buffer and lose events the service had sent.
    public let port: Int
    private let socket: UDPSocket
    private let lock = NSLock()
    private var datagrams: [String] = []
    /// When each datagram was read (wall clock, s), beside `datagrams`.
    private var arrivals: [Double] = []
    private var decoded: [Event] = []
    private var decodedArrivals: [Double] = []
    private var failures: [String] = []
    /// How many of `datagrams` have been decoded into `decoded` or `failures`.
    private var decodedCount = 0
    private var running = true
    private var finished = false

    public init() throws {
        socket = try UDPSocket(
            bindingTo: try UDPEndpoint(host: "127.0.0.1", port: 0), receiveBuffer: 4 << 20, receiveTimeout: 0.1)
        port = Int(socket.localPort)
        let thread = Thread { [unowned self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while self.lock.withLock({ self.running }) {
                guard let n = self.socket.receive(into: &buffer) else { continue }
                let arrival = Date().timeIntervalSince1970
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                self.lock.withLock {
                    self.datagrams.append(text)
                    self.arrivals.append(arrival)
                }
            }
            self.lock.withLock { self.finished = true }
        }
        thread.start()
    }

    public func stop() {
        lock.withLock { running = false }
        for _ in 0..<50 where !lock.withLock({ finished }) { Thread.sleep(forTimeInterval: 0.02) }
    }

    /// The datagrams as received.
    public var received: [String] { lock.withLock { datagrams } }
    /// The typed events, in arrival order.
    public var events: [Event] {
        lock.withLock {
            decodeNew(); return decoded
        }
    }
    /// The typed events with when each was read (wall clock, s).
    public var timedEvents: [(event: Event, arrival: Double)] {
        lock.withLock {
            decodeNew(); return Array(zip(decoded, decodedArrivals))
        }
    }
    /// Datagrams that were not valid events, with the reason.
    public var undecodable: [String] {
        lock.withLock {
            decodeNew(); return failures
        }
    }

    /// Decodes what arrived since the last look (under `lock`).
    private func decodeNew() {
        while decodedCount < datagrams.count {
            let text = datagrams[decodedCount]
            decodedCount += 1
            do throws(EventDecodingError) {
                decoded.append(try Event(decoding: text))
                decodedArrivals.append(arrivals[decodedCount - 1])
            } catch {
                failures.append("\(error): \(text)")
            }
        }
    }

    /// The events as plain JSON objects, for field-by-field checks.
    public var parsed: [[String: Any]] {
        received.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// Waits (bounded) until `condition` holds over the typed events.
    @discardableResult
    public func wait(seconds: Double, until condition: ([Event]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(events) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return condition(events)
    }

    /// The same, for async tests: it sleeps without holding one of the few cooperative threads (two on
    /// a 2-core machine), which every async test and in-process service shares.
    @discardableResult
    public func wait(seconds: Double, until condition: ([Event]) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(events) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition(events)
    }
}

extension Event {
    public var legID: String? { leg?.legID }
    public var isLegEnd: Bool { if case .legEnd = body { true } else { false } }
    public var isEmotion: Bool { if case .emotion = body { true } else { false } }
    public var legEnd: LegEnd? { if case .legEnd(let e) = body { e } else { nil } }
    public var emotion: EmotionEvent? { if case .emotion(let e) = body { e } else { nil } }
    public var legStart: LegStart? { if case .legStart(let e) = body { e } else { nil } }
    public var stateChange: StateChange? { if case .state(let e) = body { e } else { nil } }
}
