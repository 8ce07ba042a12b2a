import EmotionProtocol
import EmotionUDP
import Foundation

/// A UDP socket on loopback that collects event datagrams, as a consumer would: each one decoded
/// as a protocol-v1 event (and counted when it is not one).
public final class EventReceiver: @unchecked Sendable {
    // `datagrams` and `decoded` are guarded by `lock`; the socket is read by one background thread.
    public let port: Int
    private let socket: UDPSocket
    private let lock = NSLock()
    private var datagrams: [String] = []
    private var decoded: [Event] = []
    private var failures: [String] = []
    private var running = true
    private var finished = false

    public init() throws {
        socket = try UDPSocket(bindingTo: try UDPEndpoint(host: "127.0.0.1", port: 0), receiveTimeout: 0.1)
        port = Int(socket.localPort)
        let thread = Thread { [unowned self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while self.lock.withLock({ self.running }) {
                guard let n = self.socket.receive(into: &buffer) else { continue }
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                let event = Result { () throws(EventDecodingError) in try Event(decoding: text) }
                self.lock.withLock {
                    self.datagrams.append(text)
                    switch event {
                    case .success(let e): self.decoded.append(e)
                    case .failure(let why): self.failures.append("\(why): \(text)")
                    }
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
    public var events: [Event] { lock.withLock { decoded } }
    /// Datagrams that were not valid events, with the reason.
    public var undecodable: [String] { lock.withLock { failures } }

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
