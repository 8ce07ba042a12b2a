import EmotionHistory
import EmotionMedia
import EmotionProtocol
import Foundation

/// Event lines as the service writes them, built with the protocol's own encoder.
enum HistoryFixtures {
    static func line(
        _ body: Event.Body, seq: Int64, leg: String = "leg-1", call: String = "call-1", role: String = "customer",
        agent: String? = nil, ts: String = "2026-12-01T10:00:00.000Z"
    ) -> String {
        Event(
            sequence: seq, timestamp: ts,
            leg: LegIdentity(
                callID: call, legID: leg, role: role, agentID: agent, tags: agent == nil ? [:] : ["queue": "q1"]),
            body: body
        ).serialized()
    }

    static func start(
        seq: Int64, leg: String = "leg-1", call: String = "call-1", agent: String? = "agent-1"
    )
        -> String
    {
        line(
            .legStart(LegStart(codec: .pcmu, payloadType: 0, ssrc: 7, source: "127.0.0.1:4000", port: 40000)), seq: seq,
            leg: leg, call: call, agent: agent)
    }

    static func emotion(
        seq: Int64, leg: String = "leg-1", call: String = "call-1", at end: Double, upset: Double?
    )
        -> String
    {
        line(
            .emotion(
                EmotionEvent(
                    reading: EmotionReading(
                        start: end - 1, end: end, speech: 0.8, upset: upset, label: upset == nil ? nil : .angry,
                        scores: nil), state: (upset ?? 0) > 0.7 ? .upset : .calm)), seq: seq, leg: leg, call: call)
    }

    static func end(
        seq: Int64, leg: String = "leg-1", call: String = "call-1", agent: String? = "agent-1", calmer: Bool = true,
        ts: String = "2026-12-01T10:05:00.000Z"
    ) -> String {
        line(
            .legEnd(
                LegEnd(
                    reason: "bye",
                    summary: LegSummary(
                        durationSeconds: 300, mediaSeconds: 299, speechSeconds: 120, upsetFraction: 0.25,
                        peakUpset: 0.9, emotionMix: Array(repeating: 1.0 / 7, count: 7), startUpset: 0.6,
                        endUpset: 0.2, endedCalmer: calmer, escalations: 1),
                    rtp: RTPTotals())), seq: seq, leg: leg, call: call, agent: agent, ts: ts)
    }

    static func heartbeat(seq: Int64) -> String {
        Event(sequence: seq, timestamp: "2026-12-01T10:00:01.000Z", leg: nil, body: .heartbeat(Heartbeat(legs: 1)))
            .serialized()
    }
}

/// A fresh directory per test.
final class Scratch {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("emotiontap-history-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func append(_ lines: [String], to name: String) throws {
        let p = path(name)
        if !FileManager.default.fileExists(atPath: p) { _ = FileManager.default.createFile(atPath: p, contents: nil) }
        let h = try FileHandle(forWritingAtPath: p).unwrap()
        try h.seekToEnd()
        try h.write(contentsOf: Data(lines.map { $0 + "\n" }.joined().utf8))
        try h.close()
    }
}

extension Optional {
    func unwrap() throws -> Wrapped {
        guard let self else { throw CocoaError(.fileNoSuchFile) }
        return self
    }
}
