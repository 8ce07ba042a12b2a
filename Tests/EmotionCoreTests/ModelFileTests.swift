import EmotionCore
import EmotionTestSupport
import Foundation
import Testing

@Suite("model files")
struct ModelFileTests {
    static func builtInJSON() throws -> [String: Any] {
        let data = try EmotionModel.builtIn().encoded()
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func refusal(_ data: Data) -> String? {
        do {
            _ = try EmotionModel(data: data, source: "m.json")
            return nil
        } catch {
            return error.description
        }
    }

    @Test("a missing, truncated, old, foreign or out-of-range model file is refused with its reason")
    func refusals() throws {
        let missing = URL(fileURLWithPath: "/nonexistent/model.json")
        #expect { try EmotionModel.load(missing) } throws: { "\($0)".contains("/nonexistent/model.json: cannot read") }

        let whole = try EmotionModel.builtIn().encoded()
        let truncated = try #require(Self.refusal(whole.prefix(whole.count / 2)))
        #expect(truncated.contains("m.json: not a model file") && truncated.contains("truncated"), "\(truncated)")

        var json = try Self.builtInJSON()
        json["version"] = 1
        let old = try #require(Self.refusal(try JSONSerialization.data(withJSONObject: json)))
        #expect(old.contains("model version 1; this build reads version 2"), "\(old)")

        json = try Self.builtInJSON()
        json["format"] = "something-else"
        #expect(Self.refusal(try JSONSerialization.data(withJSONObject: json))?.contains("format") == true)

        json = try Self.builtInJSON()
        json["inputs"] = (json["inputs"] as? [String] ?? []) + ["a_new_feature"]
        let other = try #require(Self.refusal(try JSONSerialization.data(withJSONObject: json)))
        #expect(other.contains("different feature vector"), "\(other)")

        json = try Self.builtInJSON()
        json.removeValue(forKey: "calibration")
        let noCalibration = try #require(Self.refusal(try JSONSerialization.data(withJSONObject: json)))
        #expect(noCalibration.contains("'calibration' is missing"), "\(noCalibration)")

        json = try Self.builtInJSON()
        var decision = try #require(json["decision"] as? [String: Any])
        decision["exitUpset"] = 0.99
        decision["enterUpset"] = 0.5
        json["decision"] = decision
        #expect(Self.refusal(try JSONSerialization.data(withJSONObject: json))?.contains("out of range") == true)

        // An escalation after no time at all is out of range too.
        json = try Self.builtInJSON()
        decision = try #require(json["decision"] as? [String: Any])
        decision["escalateUpsetSeconds"] = 0
        json["decision"] = decision
        #expect(Self.refusal(try JSONSerialization.data(withJSONObject: json))?.contains("out of range") == true)

        // So is a span shorter than the upset speech it must hold (that escalation could never fire).
        json = try Self.builtInJSON()
        decision = try #require(json["decision"] as? [String: Any])
        decision["escalateUpsetSeconds"] = 16
        decision["escalateWithinSeconds"] = 12
        json["decision"] = decision
        #expect(Self.refusal(try JSONSerialization.data(withJSONObject: json))?.contains("out of range") == true)
        decision["escalateWithinSeconds"] = 20
        json["decision"] = decision
        #expect(Self.refusal(try JSONSerialization.data(withJSONObject: json)) == nil)
    }

    @Test("a model whose frame network does not fit, or has no fusion weight, is refused with its reason")
    func frameNetworkRefusals() throws {
        let golden = try JSONSerialization.jsonObject(
            with: Data(contentsOf: Fixtures.goldens.appendingPathComponent("frame-network/frame-net.json")))
        let net = try #require((golden as? [String: Any])?["net"] as? [String: Any])
        var json = try Self.builtInJSON()
        json["frameNet"] = net
        json["frameNetWeight"] = 0.5
        #expect(Self.refusal(try JSONSerialization.data(withJSONObject: json)) == nil)
        let fused = try EmotionModel(data: try JSONSerialization.data(withJSONObject: json), source: "m.json")
        #expect(ModelRunner(model: fused).readsFrames)

        json.removeValue(forKey: "frameNetWeight")
        #expect(Self.refusal(try JSONSerialization.data(withJSONObject: json))?.contains("frameNetWeight") == true)

        var shorter = net
        shorter["windowFrames"] = 100
        json["frameNet"] = shorter
        json["frameNetWeight"] = 0.5
        let windows = try #require(Self.refusal(try JSONSerialization.data(withJSONObject: json)))
        #expect(windows.contains("100-frame windows"), "\(windows)")

        var cut = net
        var blocks = try #require(net["blocks"] as? [[String: Any]])
        blocks[0]["outputs"] = 47
        cut["blocks"] = blocks
        json["frameNet"] = cut
        let shapes = try #require(Self.refusal(try JSONSerialization.data(withJSONObject: json)))
        #expect(shapes.contains("block 1 has inconsistent shapes"), "\(shapes)")
    }

    @Test("calibration is monotonic, identity leaves a probability as it is, and it reaches the scores")
    func calibration() throws {
        let c = UpsetCalibration(slope: 1.7, intercept: -0.8)
        var previous: Float = 0
        for raw in stride(from: Float(0.01), through: 0.99, by: 0.01) {
            let p = c.apply(raw)
            #expect(p > previous)
            previous = p
            #expect(abs(UpsetCalibration.identity.apply(raw) - raw) < 1e-5)
        }
        var model = try EmotionModel.builtIn()
        let vector = [Float](repeating: 0.2, count: model.inputs.count)
        model.calibration = .identity
        let raw = ModelRunner(model: model).predict(vector).upset
        model.calibration = c
        #expect(abs(ModelRunner(model: model).predict(vector).upset - c.apply(raw)) < 1e-6)
    }
}

@Suite("per-leg baseline")
struct LegBaselineTests {
    @Test("no look-ahead, a warm start from the corpus, level from the first window, then a slow running mean")
    func baseline() throws {
        let tracked = ["centroid_mean", LegNormalization.level]
        let normalization = LegNormalization(
            tracked: tracked, priorMean: [1000, 0], priorSeconds: 10, timeConstantSeconds: 30)
        #expect(normalization.vectorIndices?.count == 2)
        #expect(normalization.inputNames == ["leg_rel_centroid_mean", "leg_rel_level_db"])
        #expect(LegNormalization(tracked: ["no_such_entry"], priorMean: [0]).vectorIndices == nil)
        var baseline = LegBaseline(normalization)
        var vector = [Float](repeating: 0, count: WindowVector.count)
        let centroid = try #require(WindowVector.names.firstIndex(of: "centroid_mean"))
        var out = [Float](repeating: 0, count: 2)
        func feed(_ c: Float, level: Float, speech: Double = 2) -> [Float] {
            vector[centroid] = c
            baseline.relative(vector: vector, levelDB: level, speechSeconds: speech, into: &out)
            return out
        }
        // First window: against the corpus prior; the level has no prior, so it reads 0.
        #expect(feed(1200, level: -30) == [200, 0])
        // The baseline moved by 2/(10+2) of the difference; the level baseline is the first window's.
        let second = feed(1200, level: -24)
        #expect(abs(second[0] - (200 - 200 * 2 / 12)) < 1e-3, "\(second)")
        #expect(abs(second[1] - 6) < 1e-4)
        // A caller who stays at one value converges to it: the relative value decays towards 0, slowly.
        var last: [Float] = []
        for _ in 0..<100 { last = feed(1200, level: -24) }
        #expect(abs(last[0]) < 5 && abs(last[1]) < 0.5, "\(last)")
        baseline.reset()
        #expect(feed(1200, level: -10) == [200, 0])
    }

    @Test("the built-in model reads leg-relative inputs: a leg's history moves its scores, a reset restores them")
    func runnerResets() throws {
        let model = try EmotionModel.builtIn()
        let leg = try #require(model.legNormalization)
        #expect(model.inputs == WindowVector.names + leg.inputNames)
        let reloaded = try EmotionModel(data: try model.encoded(), source: "leg.json")
        #expect(reloaded.legNormalization == leg)
        let runner = ModelRunner(model: reloaded)
        let v = [Float](repeating: 0.1, count: WindowVector.count)
        let first = runner.predict(vector: v, levelDB: -20, speechSeconds: 2)
        // Ten windows of a louder, different voice: the baseline moves, so the same window now reads otherwise.
        let other = [Float](repeating: 0.9, count: WindowVector.count)
        for _ in 0..<10 { _ = runner.predict(vector: other, levelDB: -8, speechSeconds: 2) }
        let later = runner.predict(vector: v, levelDB: -20, speechSeconds: 2)
        #expect(later != first)
        runner.resetLeg()
        #expect(runner.predict(vector: v, levelDB: -20, speechSeconds: 2) == first)
    }
}
