import EmotionCore
import EmotionRTP
import Foundation
import Testing
@testable import EmotionTapServer

@Suite("leg decisions")
struct LegDecisionTests {
    func window(_ end: Double, speech: Double = 2.5) -> WindowFeatures {
        WindowFeatures(start: max(0, end - 3), end: end, speechFraction: speech / 3, speechSeconds: speech, vector: [])
    }

    func scores(upset: Float) -> EmotionScores {
        // Upset mass on angry, the rest on neutral.
        var p = [Float](repeating: 0, count: 7)
        p[Emotion.angry.index] = upset
        p[Emotion.neutral.index] = 1 - upset
        return EmotionScores(probabilities: p, upset: upset)
    }

    @Test("hysteresis: one upset window does not flip the state; a sustained stretch does, and calm returns it")
    func hysteresis() {
        var d = LegDecisions(policy: LegPolicy(), role: "customer")
        var t = 3.0
        func feed(_ u: Float) -> [LegDecisions.Output] { defer { t += 1 }; return d.add(window: window(t), scores: scores(upset: u)) }
        for _ in 0..<5 { #expect(feed(0.1).isEmpty) }
        #expect(feed(0.9).isEmpty, "one window at 0.9 smooths to 0.5: still calm")
        #expect(feed(0.1).isEmpty)
        _ = feed(0.9)
        #expect(feed(0.9) == [.stateChanged(from: .calm, to: .upset)])
        #expect(feed(0.5).isEmpty, "between the thresholds: stays upset")
        #expect(feed(0.1) == [.stateChanged(from: .upset, to: .calm)])
        #expect(d.add(window: window(t), scores: nil).isEmpty, "silence gives no verdict")
    }

    @Test("escalation: once per episode after 20 s of upset speech within 60 s, customers only")
    func escalation() {
        var customer = LegDecisions(policy: LegPolicy(), role: "customer")
        var agent = LegDecisions(policy: LegPolicy(), role: "agent")
        var escalations: [Double] = []
        for i in 0..<40 {
            let w = window(Double(3 + i), speech: 3)
            for output in customer.add(window: w, scores: scores(upset: 0.95)) {
                if case .escalate(let s) = output { escalations.append(s) }
            }
            #expect(!agent.add(window: w, scores: scores(upset: 0.95)).contains { if case .escalate = $0 { return true }; return false })
        }
        // 1 s of new speech per window: the 20th upset second arrives about 20 windows in, and only once.
        #expect(escalations.count == 1)
        #expect((escalations.first ?? 0) >= 20)
        #expect(customer.summary.escalations == 1)
        #expect(customer.summary.upsetFraction > 0.9)
    }

    @Test("summary: speech time, peak, emotion mix and whether the caller ended calmer")
    func summary() {
        var d = LegDecisions(policy: LegPolicy(), role: "customer")
        let levels: [Float] = [0.9, 0.9, 0.85, 0.8, 0.7, 0.5, 0.3, 0.2, 0.1, 0.1, 0.1]
        for (i, u) in levels.enumerated() { _ = d.add(window: window(Double(3 + i), speech: 3), scores: scores(upset: u)) }
        let s = d.summary
        #expect(abs(s.speechSeconds - (3 + 10)) < 1e-9, "the first window counts whole, later ones their new second")
        #expect(abs(s.peakUpset - 0.9) < 1e-6)
        #expect(s.endedCalmer == true)
        #expect(abs((s.emotionMix["angry"] ?? 0) + (s.emotionMix["neutral"] ?? 0) - 1) < 1e-9)
    }
}

@Suite("RTP statistics")
struct ReceptionStatisticsTests {
    @Test("loss, reordering, duplicates, sequence wrap and SSRC change per RFC 3550")
    func statistics() {
        var s = ReceptionStatistics(clockRate: 8000)
        var t = 0.0
        func rx(_ seq: UInt16, ssrc: UInt32 = 1) -> ReceptionStatistics.Disposition {
            t += 0.02
            return s.record(sequence: seq, timestamp: UInt32(t * 8000), ssrc: ssrc, arrival: t)
        }
        #expect(rx(65533) == .inOrder(gap: 0))
        #expect(rx(65534) == .inOrder(gap: 0))
        #expect(rx(0) == .inOrder(gap: 1))        // 65535 lost, wrapped
        #expect(rx(65535) == .reordered)          // ...and arrives late
        #expect(rx(0) == .duplicate)
        #expect(rx(3) == .inOrder(gap: 2))        // 1 and 2 lost
        #expect(s.expected == 7)
        #expect(s.received == 5)
        #expect(s.lost == 2)
        #expect(s.reordered == 1 && s.duplicates == 1)
        #expect(rx(500, ssrc: 2) == .newSource)
        #expect(s.ssrcChanges == 1)
        #expect(rx(501, ssrc: 2) == .inOrder(gap: 0))
        #expect(s.jitter >= 0)
    }
}

@Suite("configuration")
struct ConfigTests {
    @Test("the shipped config loads and equals the built-in defaults")
    func shippedConfig() throws {
        let text = try String(contentsOf: Repo.root.appendingPathComponent("config/emotiontap.yaml"), encoding: .utf8)
        #expect(try ServerConfig.load(yaml: text, source: "emotiontap.yaml") == ServerConfig())
    }

    @Test("a wrong key or value names the key and its line")
    func errors() {
        let cases: [(String, String)] = [
            ("http:\n  host: 127.0.0.1\n  prot: 80\n", "http.prot (line 3): unknown key"),
            ("rtp:\n  ports: \"5000-4000\"\n", "rtp.ports (line 2)"),
            ("rtp:\n  leg_timeout_s: soon\n", "rtp.leg_timeout_s (line 2): must be a number"),
            ("events:\n  targets: [\"nowhere\"]\n", "events.targets (line 2)"),
            ("policy:\n  enter_upset: 0.3\n  exit_upset: 0.5\n", "exit_upset"),
            ("static_legs:\n  - {port: 40001, role: customer}\n", "static_legs[0] (line 2): needs port, call_id and role"),
            ("colour: blue\n", "colour (line 1): unknown key"),
            ("rtp: [1, 2]\n", "rtp (line 1): must be a mapping"),
            ("rtp:\n  allow: [\"10.0.0.0/8\", \"lan\"]\n", "rtp.allow (line 2): 'lan' is not an IPv4 CIDR"),
            ("rtp:\n  lock_source: maybe\n", "rtp.lock_source (line 2): must be true or false"),
        ]
        for (yaml, expected) in cases {
            #expect(throws: ConfigError.self) { try ServerConfig.load(yaml: yaml, source: "c.yaml") }
            do {
                _ = try ServerConfig.load(yaml: yaml, source: "c.yaml")
            } catch {
                #expect(error.description.contains(expected), "\(error.description) should mention \(expected)")
            }
        }
    }

    @Test("the event log rotates by size and keeps N files")
    func rotation() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("e.jsonl").path
        let log = try RotatingLog(path: path, maxBytes: 4096, keep: 2)
        let line = String(repeating: "x", count: 99)
        for _ in 0..<200 { try log.append(line) }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(files == ["e.jsonl", "e.jsonl.1", "e.jsonl.2"])
        for f in files { #expect(try Data(contentsOf: dir.appendingPathComponent(f)).count <= 4096 + 100) }
    }
}
