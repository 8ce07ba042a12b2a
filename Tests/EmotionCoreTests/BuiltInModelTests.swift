@testable import EmotionCore
import EmotionTestSupport
import Foundation
import Testing

@Suite("built-in model")
struct BuiltInModelTests {
    @Test("the default model is built in, self-describing, and cheap to run")
    func builtIn() throws {
        let model = try EmotionModel.builtIn()
        #expect(model.inputs == WindowVector.names + (model.legNormalization?.inputNames ?? []))
        #expect(model.labels == Emotion.allCases.map(\.rawValue))
        #expect(!model.training.command.isEmpty)
        #expect(model.training.clips > 1000)
        #expect(!model.metrics.isEmpty)
    }

    @Test(
        "the shipped escalation rule can fire for an upset caller who speaks half the time, as one side of a conversation does"
    )
    func escalatesInAConversation() throws {
        let policy = LegPolicy().tuned(by: try EmotionModel.builtIn().decision)
        var decisions = LegDecisions(policy: policy, role: "customer")
        var upset = [Float](repeating: 0, count: Emotion.allCases.count)
        upset[Emotion.angry.index] = 1
        let scores = EmotionScores(probabilities: upset, upset: 1)
        var escalatedAt: Double?
        // A window every second, each with half a second of new speech: the agent talks the rest.
        for second in 3...240 {
            let end = Double(second)
            let window = WindowFeatures(start: end - 3, end: end, speechFraction: 0.5, speechSeconds: 1.5, vector: [])
            for case .escalate in decisions.add(window: window, scores: scores) where escalatedAt == nil {
                escalatedAt = end
            }
        }
        let at = try #require(escalatedAt, "\(policy): never escalated")
        #expect(at <= 2 * policy.escalateUpsetSeconds + 10, "\(policy): escalated only at \(at) s")
    }

    @Test("an angry clip comes out more upset than a neutral one")
    func angryVersusNeutral() throws {
        let predictor = try ClipPredictor(model: try EmotionModel.builtIn())
        let angry = try #require(predictor.predict(try Fixtures.audio("crema-1009_DFA_ANG_XX.wav").samples))
        let neutral = try #require(predictor.predict(try Fixtures.audio("crema-1022_IWW_NEU_XX.wav").samples))
        #expect(angry.upset > neutral.upset)
    }

    @Test("a clip played 20 dB quieter gets nearly the same answer")
    func quieterClip() throws {
        let predictor = try ClipPredictor(model: try EmotionModel.builtIn())
        for clip in Fixtures.clips + ["crema-1022_IWW_NEU_XX.wav"] {
            let samples = try Fixtures.audio(clip).samples
            let loud = try #require(predictor.predict(samples))
            // Quieter and re-quantised by G.711, as a quieter line would deliver it.
            let quiet = samples.map {
                Float(G711Law.muLaw.linear(G711Law.muLaw.encode(Int16(($0 * 0.1 * 32768).rounded())))) / 32768
            }
            let soft = try #require(predictor.predict(quiet))
            #expect(
                (loud.upset >= 0.5) == (soft.upset >= 0.5), "\(clip): upset \(loud.upset) vs \(soft.upset) at -20 dB")
            #expect(abs(loud.upset - soft.upset) < 0.25, "\(clip): upset \(loud.upset) vs \(soft.upset) at -20 dB")
        }
    }
}
