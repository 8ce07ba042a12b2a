import EmotionCore
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
