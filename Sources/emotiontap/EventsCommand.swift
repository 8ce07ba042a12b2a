import ArgumentParser
import EmotionProtocol
import EmotionUDP
import Foundation
import Glibc

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Listen for EmotionTap events on UDP and print them readably."
    )

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen: String = "127.0.0.1:9099"
    @Flag(help: "Print each event's JSON as received.")
    var json = false
    @Option(help: "Stop after this many events.")
    var count: Int?
    @Option(help: "Stop after this many seconds without an event.")
    var idleTimeout: Double?
    @Option(help: "Stop once a leg.end has arrived for this many legs.")
    var untilLegEnds: Int?
    @Option(help: "HMAC key: verify each event's signature (also EMOTIONTAP_HMAC_KEY).")
    var hmacKey: String?

    func validate() throws {
        do { _ = try UDPEndpoint(listen) } catch { throw ValidationError("--listen: \(error)") }
    }

    func run() throws {
        let socket = try orExit { try UDPSocket(bindingTo: try UDPEndpoint(listen)) }
        let signer = (hmacKey ?? ProcessInfo.processInfo.environment["EMOTIONTAP_HMAC_KEY"]).map {
            EventSigner(key: $0)
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var received = 0, ended = 0
        var lastEvent = Date()
        while true {
            guard let n = socket.receive(into: &buffer) else {
                if let idle = idleTimeout, Date().timeIntervalSince(lastEvent) > idle { break }
                continue
            }
            lastEvent = Date()
            received += 1
            let text = String(decoding: buffer[0..<n], as: UTF8.self)
            let event = Result { () throws(EventDecodingError) in try Event(decoding: text) }
            var verdict = ""
            if let signer { verdict = signer.verify(text) ? " [signature ok]" : " [BAD SIGNATURE]" }
            let line: String
            switch event {
            case .success(let e): line = json ? text : EventFormatter.line(e)
            case .failure(let why): line = "? not an event (\(why)): \(text)"
            }
            // Unbuffered, so a pipe sees each event as it arrives.
            let out = line + verdict + "\n"
            _ = out.withCString { Glibc.write(1, $0, strlen($0)) }
            if case .success(let e) = event, case .legEnd = e.body { ended += 1 }
            if let count, received >= count { break }
            if let untilLegEnds, ended >= untilLegEnds { break }
        }
    }
}

/// One readable line per event, for a person at a terminal.
enum EventFormatter {
    static func line(_ event: Event) -> String {
        let ts = String(event.timestamp.dropFirst(11).prefix(12))
        let who = event.leg.map { "\($0.callID)/\($0.role)" } ?? ""
        let detail: String
        switch event.body {
        case .legStart(let s):
            detail = "codec \(s.codec.rawValue) pt \(s.payloadType) from \(s.source ?? "?")"
        case .emotion(let e):
            let r = e.reading
            let upset = r.upset ?? 0
            let bar = String(repeating: "#", count: Int((upset * 10).rounded())).padding(
                toLength: 10, withPad: " ", startingAt: 0)
            detail = String(
                format: "%5.1f-%5.1f s  upset %.2f [%@]  %@  (%@)", r.start, r.end, upset, bar,
                r.label?.rawValue ?? "?", e.state.rawValue)
        case .state(let s):
            detail = "\(s.from.rawValue) -> \(s.to.rawValue)"
        case .escalate(let e):
            detail = String(format: "ESCALATE: upset for %.0f s of speech", e.upsetSeconds)
        case .legEnd(let e):
            let s = e.summary
            let calmer = s.endedCalmer.map { $0 ? "ended calmer" : "did not end calmer" } ?? "too short to tell"
            detail = String(
                format: "reason %@; speech %.1f s, upset %.0f%%, peak %.2f, %@; rtp %llu received, %llu lost",
                e.reason, s.speechSeconds, s.upsetFraction * 100, s.peakUpset, calmer, e.rtp.received, e.rtp.lost)
        case .heartbeat(let h):
            detail = "\(h.legs) legs active"
        }
        let type = event.type.padding(toLength: 9, withPad: " ", startingAt: 0)
        return "\(ts) \(type) \(who.padding(toLength: 20, withPad: " ", startingAt: 0)) \(detail)"
    }
}
