import ArgumentParser
import Crypto
import CLinux
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

    func run() throws {
        let fd: Int32
        do { fd = try boundUDPSocket(listen) } catch {
            StandardError.line("emotiontap: \(error)")
            throw ExitCode(2)
        }
        let key = (hmacKey ?? ProcessInfo.processInfo.environment["EMOTIONTAP_HMAC_KEY"]).map { SymmetricKey(data: Data($0.utf8)) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var received = 0, ended = 0
        var lastEvent = Date()
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 {
                if let idle = idleTimeout, Date().timeIntervalSince(lastEvent) > idle { break }
                continue
            }
            lastEvent = Date()
            received += 1
            let text = String(decoding: buffer[0..<n], as: UTF8.self)
            var verdict = ""
            if let key { verdict = EventSignature.verify(text, key: key) ? " [signature ok]" : " [BAD SIGNATURE]" }
            let line = (json ? text : EventFormatter.line(text)) + verdict + "\n"
            // Unbuffered, so a pipe sees each event as it arrives.
            _ = line.withCString { Glibc.write(1, $0, strlen($0)) }
            if text.contains("\"type\":\"leg.end\"") { ended += 1 }
            if let count, received >= count { break }
            if let untilLegEnds, ended >= untilLegEnds { break }
        }
        close(fd)
    }
}

/// The receiver side of the protocol's signature: HMAC-SHA256 over the event without its `sig` field.
enum EventSignature {
    static func verify(_ datagram: String, key: SymmetricKey) -> Bool {
        guard let range = datagram.range(of: ",\"sig\":\""), datagram.hasSuffix("\"}") else { return false }
        let signed = String(datagram[..<range.lowerBound]) + "}"
        let hex = datagram[range.upperBound..<datagram.index(datagram.endIndex, offsetBy: -2)]
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signed.utf8), using: key)
        let expected = mac.map { String(format: "%02x", $0) }.joined()
        return expected == hex
    }
}

/// One readable line per event, for a person at a terminal.
enum EventFormatter {
    static func line(_ text: String) -> String {
        guard let o = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return "? \(text)" }
        let ts = (o["ts"] as? String).map { String($0.dropFirst(11).prefix(12)) } ?? ""
        let type = o["type"] as? String ?? "?"
        let who = [o["call_id"], o["role"]].compactMap { $0 as? String }.joined(separator: "/")
        func num(_ k: String) -> Double { (o[k] as? NSNumber)?.doubleValue ?? 0 }
        let detail: String
        switch type {
        case "leg.start":
            detail = "codec \(o["codec"] ?? "?") pt \(o["payload_type"] ?? "?") from \(o["source"] ?? "?")"
        case "emotion":
            let bar = String(repeating: "#", count: Int((num("upset") * 10).rounded())).padding(toLength: 10, withPad: " ", startingAt: 0)
            detail = String(format: "%5.1f-%5.1f s  upset %.2f [%@]  %@  (%@)", num("start"), num("end"), num("upset"), bar,
                            o["label"] as? String ?? "?", o["state"] as? String ?? "?")
        case "state":
            detail = "\(o["from"] ?? "?") -> \(o["to"] ?? "?")"
        case "escalate":
            detail = String(format: "ESCALATE: upset for %.0f s of speech", num("upset_s"))
        case "leg.end":
            let s = o["summary"] as? [String: Any] ?? [:], r = o["rtp"] as? [String: Any] ?? [:]
            let calmer = (s["ended_calmer"] as? Bool).map { $0 ? "ended calmer" : "did not end calmer" } ?? "too short to tell"
            detail = String(format: "reason %@; speech %.1f s, upset %.0f%%, peak %.2f, %@; rtp %@ received, %@ lost",
                            o["reason"] as? String ?? "?", (s["speech_s"] as? NSNumber)?.doubleValue ?? 0,
                            ((s["upset_fraction"] as? NSNumber)?.doubleValue ?? 0) * 100, (s["peak_upset"] as? NSNumber)?.doubleValue ?? 0,
                            calmer, "\(r["received"] ?? "?")", "\(r["lost"] ?? "?")")
        case "heartbeat":
            detail = "\(o["legs"] ?? "?") legs active"
        default:
            detail = text
        }
        return "\(ts) \(type.padding(toLength: 9, withPad: " ", startingAt: 0)) \(who.padding(toLength: 20, withPad: " ", startingAt: 0)) \(detail)"
    }
}
