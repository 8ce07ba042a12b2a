@testable import EmotionCore
import EmotionTestSupport
@testable import EmotionTraining
import Foundation
import Testing

@Suite("labels and reports")
struct LabelAndReportTests {
    @Test("corpus labels map onto the seven emotions and upset")
    func labels() {
        #expect(Emotion(label: "calm") == .neutral)
        #expect(Emotion(label: "ANG") == .angry)
        #expect(Emotion(label: "ps") == .surprise)
        #expect(Emotion(label: "boredom") == nil)
        #expect(Emotion.allCases.filter(\.isUpset) == [.angry, .disgust, .fear, .sad])
        #expect(Emotion.allCases.filter { !$0.isUpset } == [.happy, .neutral, .surprise])
    }

    @Test("manifest rows are checked: unknown emotions and contradictory upset flags name their line")
    func manifest() throws {
        let dir = try TemporaryDirectory()
        let good = try dir.write(
            "m.csv",
            Array(
                ("path,corpus,speaker,emotion,intensity,upset,duration_s\n"
                    + "a.wav,x,1,calm,normal,0,1.0\nb.wav,x,2,fear,high,1,2.0\n").utf8))
        let entries = try Manifest.read(good)
        #expect(entries.map(\.emotion) == [.neutral, .fear])
        #expect(entries.map(\.upset) == [false, true])
        let bad = try dir.write(
            "bad.csv",
            Array("path,corpus,speaker,emotion,intensity,upset,duration_s\na.wav,x,1,angry,normal,0,1.0\n".utf8))
        #expect { try Manifest.read(bad) } throws: { "\($0)".contains("bad.csv:2") }
        let unknown = try dir.write("u.csv", Array("path,corpus,speaker,emotion\na.wav,x,1,bored\n".utf8))
        #expect { try Manifest.read(unknown) } throws: { "\($0)".contains("unknown emotion 'bored'") }
    }

    @Test("report arithmetic on a tiny hand-made set (checked against scikit-learn's numbers)")
    func report() {
        // truth:     a a a b b c
        // predicted: a a b b c c
        let r = ClassificationReport(
            names: ["a", "b", "c"], truth: [0, 0, 0, 1, 1, 2], predicted: [0, 0, 1, 1, 2, 2])
        #expect(r.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
        #expect(abs(r.accuracy - 4.0 / 6) < 1e-12)
        #expect(r.correct == 4)
        #expect(abs(r.classes[0].precision - 1) < 1e-12)
        #expect(abs(r.classes[0].recall - 2.0 / 3) < 1e-12)
        #expect(abs(r.classes[0].f1 - 0.8) < 1e-12)
        #expect(abs(r.classes[1].precision - 0.5) < 1e-12)
        #expect(abs(r.classes[1].f1 - 0.5) < 1e-12)
        #expect(abs(r.classes[2].f1 - 2.0 / 3) < 1e-12)
        // sklearn: macro f1 = (0.8 + 0.5 + 0.6667) / 3 = 0.6556; weighted = (3*0.8 + 2*0.5 + 1*0.6667) / 6 = 0.6778
        #expect(abs(r.macroF1 - (0.8 + 0.5 + 2.0 / 3) / 3) < 1e-12)
        #expect(abs(r.weightedF1 - (3 * 0.8 + 2 * 0.5 + 2.0 / 3) / 6) < 1e-12)
        let text = r.formatted(title: "t")
        for needle in [
            "precision", "recall", "f1-score", "support", "accuracy", "macro avg", "weighted avg", "confusion matrix",
        ] {
            #expect(text.contains(needle))
        }
        let e = EvaluationResult(truth: [.angry, .happy], predicted: [.angry, .sad], predictedUpset: [true, true])
        let json = e.json(clips: 2, skipped: 1)
        #expect(json["skipped"] as? Int == 1)
        let binary = json["binary"] as? [String: Any]
        #expect(binary?["accuracy"] as? Double == 0.5)
    }
}

@Suite("training")
struct TrainingTests {
    /// A tiny manifest over the three fixture clips.
    static func tinyCorpus() throws -> (TemporaryDirectory, URL) {
        let dir = try TemporaryDirectory()
        let rows = [
            "path,corpus,speaker,emotion,intensity,upset,duration_s",
            "crema-1009_DFA_ANG_XX.wav,crema-d,1009,angry,unspecified,1,2.3",
            "crema-1011_IEO_NEU_XX.wav,crema-d,1011,neutral,unspecified,0,2.0",
            "crema-1015_ITH_SAD_XX.wav,crema-d,1015,sad,unspecified,1,2.1",
        ]
        let manifest = try dir.write("manifest.csv", Array(rows.joined(separator: "\n").utf8))
        return (dir, manifest)
    }

    static func options(_ manifest: URL, seed: UInt64) -> TrainingOptions {
        var o = TrainingOptions(corpora: Fixtures.directory, manifest: manifest)
        o.seed = seed
        o.augmentedCopies = 1
        o.trainer.epochs = 3
        o.trainer.ensemble = 2
        o.trainer.hidden = [8]
        return o
    }

    @Test("the same seed gives the same model; another seed does not")
    func determinism() throws {
        let (dir, manifest) = try Self.tinyCorpus()
        _ = dir
        let a = try TrainingRun.run(Self.options(manifest, seed: 7)) { _ in }.model
        let b = try TrainingRun.run(Self.options(manifest, seed: 7)) { _ in }.model
        let c = try TrainingRun.run(Self.options(manifest, seed: 8)) { _ in }.model
        #expect(a.networks == b.networks)
        #expect(a.normalization == b.normalization)
        #expect(a.networks != c.networks)
        #expect(a.training.seed == 7)
        #expect(a.training.clips == 3)
    }

    @Test("label smoothing keeps the 7-way head from certainty on what it learns; without it the head is sure")
    func labelSmoothingBoundsConfidence() {
        // Seven separable clusters: one-hot targets drive the probabilities toward 1, smoothed ones toward
        // 1 - 0.3 + 0.3 / 7 (about 0.74).
        var rng = SplitMix64(seed: 3)
        let samples = (0..<280).map { i -> TrainingSample in
            let emotion = i % 7
            var x = (0..<7).map { _ in 0.1 * gaussian(&rng) }
            x[emotion] += 3
            return TrainingSample(x: x, emotion: emotion, upset: emotion < 3, weight: 1)
        }
        func meanTopProbability(smoothing: Float) -> Float {
            var config = TrainerConfig()
            config.hidden = [16]
            config.epochs = 200
            config.dropout = 0
            config.labelSmoothing = smoothing
            let network = Trainer(config: config).fit(samples, seed: 1)
            var a = [Float](repeating: 0, count: 16), b = a, p = [Float](repeating: 0, count: 7)
            var sum: Float = 0
            for s in samples {
                _ = network.forward(s.x, scratchA: &a, scratchB: &b, emotions: &p)
                sum += p.max()!
            }
            return sum / Float(samples.count)
        }
        let sure = meanTopProbability(smoothing: 0)
        let smoothed = meanTopProbability(smoothing: 0.3)
        #expect(sure > 0.95, "\(sure) (smoothed \(smoothed))")
        #expect(smoothed > 0.6 && smoothed < 0.8, "\(smoothed)")
    }

    @Test("export's folds follow the fold seed, not the training seed: frame networks keep their held-out speakers")
    func foldsFollowTheFoldSeed() throws {
        // Twelve speakers (one fixture clip each, reused), three folds.
        let dir = try TemporaryDirectory()
        let files = ["crema-1009_DFA_ANG_XX.wav", "crema-1011_IEO_NEU_XX.wav", "crema-1015_ITH_SAD_XX.wav"]
        let rows =
            ["path,corpus,speaker,emotion,intensity,upset,duration_s"]
            + (0..<12).map { i in
                "\(files[i % 3]),crema-d,\(2000 + i),\(i % 3 == 1 ? "neutral,unspecified,0" : "angry,unspecified,1"),2.0"
            }
        let manifest = try dir.write("manifest.csv", Array(rows.joined(separator: "\n").utf8))
        let entries = try Manifest.read(manifest)
        let seedOne = TrainingRun.speakerFolds(entries, folds: 3, seed: 1)
        try #require(
            seedOne != TrainingRun.speakerFolds(entries, folds: 3, seed: 2), "the test needs partitions that differ")
        func exportedFolds(seed: UInt64, foldSeed: UInt64) throws -> [Int] {
            let out = dir.url.appendingPathComponent("export-\(seed)-\(foldSeed)")
            _ = try FeatureExport.run(
                entries: entries, corpora: Fixtures.directory, out: out, features: FeatureConfig(),
                windows: WindowConfig(), augmentedCopies: 0, seed: seed, folds: 3, foldSeed: foldSeed
            ) { _ in }
            let lines = try String(contentsOf: out.appendingPathComponent("clips.csv"), encoding: .utf8)
                .split(separator: "\n")
            let column = try #require(lines.first?.split(separator: ",").firstIndex(of: "fold"))
            return lines.dropFirst().map { Int($0.split(separator: ",")[column])! }
        }
        #expect(try exportedFolds(seed: 2, foldSeed: 1) == seedOne)
        #expect(try exportedFolds(seed: 1, foldSeed: 2) == TrainingRun.speakerFolds(entries, folds: 3, seed: 2))
    }

    @Test("a model file round-trips and predicts the same; a wrong file is refused with a reason")
    func roundTrip() throws {
        let (dir, manifest) = try Self.tinyCorpus()
        let model = try TrainingRun.run(Self.options(manifest, seed: 3)) { _ in }.model
        let data = try model.encoded()
        let loaded = try EmotionModel(data: data, source: "test")
        #expect(loaded.networks == model.networks)
        #expect(loaded.features == model.features)
        let vector = [Float](repeating: 0.3, count: WindowVector.count)
        #expect(ModelRunner(model: loaded).predict(vector) == ModelRunner(model: model).predict(vector))
        let scores = ModelRunner(model: loaded).predict(vector)
        #expect(abs(scores.probabilities.reduce(0, +) - 1) < 1e-5)

        #expect { try EmotionModel(data: Data("{}".utf8), source: "empty.json") } throws: {
            "\($0)".contains("empty.json")
        }
        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        json["version"] = 99
        let future = try JSONSerialization.data(withJSONObject: json)
        #expect { try EmotionModel(data: future, source: "future.json") } throws: { "\($0)".contains("version 99") }
        _ = dir
    }

    @Test("channel simulation keeps length and level roughly, and is repeatable")
    func channel() throws {
        let audio = try Fixtures.audio(Fixtures.clips[0])
        for codec in [ChannelSimulator.Codec.pcmu, .opus(bitrate: 12000)] {
            let sim = ChannelSimulator(gainDB: -6, noiseSNR: 30, codec: codec, lossRate: 0.08, seed: 11)
            let a = try sim.apply(audio.samples), b = try sim.apply(audio.samples)
            #expect(a == b)
            #expect(a.count == audio.samples.count)
            let rms = { (x: [Float]) in (x.reduce(0) { $0 + $1 * $1 } / Float(x.count)).squareRoot() }
            let ratio = rms(a) / rms(audio.samples)
            #expect(ratio > 0.35 && ratio < 0.7, "\(codec): level ratio \(ratio) for -6 dB")
        }
    }
}
