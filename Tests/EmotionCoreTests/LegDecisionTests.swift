@testable import EmotionCore
import EmotionTestSupport
import Foundation
import Testing

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
        func feed(_ u: Float) -> [LegDecisions.Output] {
            defer { t += 1 }; return d.add(window: window(t), scores: scores(upset: u))
        }
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
            #expect(
                !agent.add(window: w, scores: scores(upset: 0.95)).contains {
                    if case .escalate = $0 { return true }; return false
                })
        }
        // 1 s of new speech per window: the 20th upset second arrives about 20 windows in, and only once.
        #expect(escalations.count == 1)
        #expect((escalations.first ?? 0) >= 20)
        #expect(customer.summary.escalations == 1)
        #expect(customer.summary.upsetFraction > 0.9)
    }

    @Test("escalation level: upset speech below escalate_upset shows the state but does not escalate")
    func escalationLevel() {
        var policy = LegPolicy()
        policy.smoothing = 1
        policy.enterUpset = 0.8
        policy.exitUpset = 0.7
        policy.escalateUpset = 0.95
        var d = LegDecisions(policy: policy, role: "customer")
        var t = 3.0
        func escalates(_ u: Float) -> Bool {
            defer { t += 1 }
            return d.add(window: window(t, speech: 3), scores: scores(upset: u)).contains {
                if case .escalate = $0 { return true }; return false
            }
        }
        for _ in 0..<40 { #expect(!escalates(0.9)) }
        #expect(d.mood == .upset, "0.9 is over enter_upset: shown upset all along")
        #expect(d.upsetSecondsInSpan == 0, "none of it at the escalation level")
        var raised = 0
        for _ in 0..<40 where escalates(0.97) { raised += 1 }
        #expect(raised == 1, "20 s at 0.97 escalates, once")
        // The same 40 windows at 0.9 with no escalation level do escalate.
        policy.escalateUpset = nil
        var plain = LegDecisions(policy: policy, role: "customer")
        var plainRaised = 0
        for i in 0..<40 {
            for case .escalate in plain.add(window: window(Double(3 + i), speech: 3), scores: scores(upset: 0.9)) {
                plainRaised += 1
            }
        }
        #expect(plainRaised == 1)
    }

    @Test("summary: speech time, peak, emotion mix and whether the caller ended calmer")
    func summary() {
        var d = LegDecisions(policy: LegPolicy(), role: "customer")
        let levels: [Float] = [0.9, 0.9, 0.85, 0.8, 0.7, 0.5, 0.3, 0.2, 0.1, 0.1, 0.1]
        for (i, u) in levels.enumerated() {
            _ = d.add(window: window(Double(3 + i), speech: 3), scores: scores(upset: u))
        }
        let s = d.summary
        #expect(abs(s.speechSeconds - (3 + 10)) < 1e-9, "the first window counts whole, later ones their new second")
        #expect(abs(s.peakUpset - 0.9) < 1e-6)
        #expect(s.endedCalmer == true)
        #expect(abs((s.emotionMix["angry"] ?? 0) + (s.emotionMix["neutral"] ?? 0) - 1) < 1e-9)
    }
}
