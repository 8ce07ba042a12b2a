import EmotionCore
import Foundation

public struct TrainingOptions: Sendable {
    public var corpora: URL
    public var manifest: URL
    public var seed: UInt64 = 1
    /// Speaker-grouped cross-validation folds; 0 or 1 skips cross-validation.
    public var folds = 0
    /// Channel-simulated copies of each clip added to the training data.
    public var augmentedCopies = 2
    public var features = FeatureConfig()
    public var windows = WindowConfig()
    public var trainer = TrainerConfig()
    public var command = ""

    public init(corpora: URL, manifest: URL) {
        self.corpora = corpora
        self.manifest = manifest
    }
}

public struct CrossValidationResult: Sendable {
    /// Clean clips (as stored), overall and per corpus.
    public var overall: EvaluationResult
    public var perCorpus: [(String, EvaluationResult)]
    /// The same held-out clips through a random phone channel (codec, loss, gain, noise).
    public var channel: EvaluationResult
    /// Upset decided by the dedicated head alone, and by the mean of the head and the 7-way probabilities
    /// (the shipped decision, from the 7-way probabilities, is in `overall`).
    public var upsetFromHead: ClassificationReport
    public var upsetFromBoth: ClassificationReport
}

public struct TrainingOutcome: Sendable {
    public var model: EmotionModel
    public var crossValidation: CrossValidationResult?
    public var skipped: [(String, String)]
}

/// Builds the data set once, optionally cross-validates with speakers grouped, then trains the final
/// model on everything.
public enum TrainingRun {
    public static func run(
        _ options: TrainingOptions, log: @escaping @Sendable (String) -> Void
    ) throws -> TrainingOutcome {
        let entries = try Manifest.read(options.manifest)
        guard !entries.isEmpty else { throw ManifestError(description: "\(options.manifest.path): no clips") }
        let started = Date()
        log(
            "extracting windows from \(entries.count) clips (+\(options.augmentedCopies) channel-simulated copies each)"
        )
        let data = DatasetBuilder.build(
            entries: entries, corpora: options.corpora, features: options.features,
            windows: options.windows, augmentedCopies: options.augmentedCopies, seed: options.seed)
        let skipped = data.skipped.map { (entries[$0.0].path, $0.1) }
        for (path, why) in skipped.prefix(20) { log("skipped \(path): \(why)") }
        log(
            String(
                format: "features done in %.0f s: %d clip variants, %d windows", Date().timeIntervalSince(started),
                data.clips.count, data.clips.reduce(0) { $0 + $1.vectors.count }))

        var cv: CrossValidationResult?
        if options.folds >= 2 {
            cv = crossValidate(data.clips, entries: entries, options: options, log: log)
        }
        log("training the final model on all clips")
        let everything = Array(entries.indices)
        let (normalization, networks) = train(
            data.clips, entries: entries, use: Set(everything), options: options, seed: options.seed)
        var counts: [String: Int] = [:]
        for e in entries { counts[e.corpus, default: 0] += 1 }
        let info = EmotionModel.TrainingInfo(
            command: options.command, manifest: options.manifest.lastPathComponent,
            clips: entries.count - skipped.count,
            windows: data.clips.reduce(0) { $0 + $1.vectors.count }, clipsPerCorpus: counts,
            speakers: Set(entries.map(\.speaker)).count, seed: options.seed,
            augmentation:
                "\(options.augmentedCopies) copies per clip: gain -24 to +12 dB, noise at 20-35 dB SNR on half, G.711 "
                + "or Opus 8/12/16 kbit/s, 5-10 % bursty loss with codec concealment",
            learner: options.trainer.summary, created: ISO8601DateFormatter().string(from: Date()))
        var metrics: [String: EmotionModel.MetricsSummary] = [:]
        if let cv {
            metrics["cv\(options.folds).all"] = cv.overall.summary
            metrics["cv\(options.folds).channel"] = cv.channel.summary
            for (corpus, result) in cv.perCorpus { metrics["cv\(options.folds).\(corpus)"] = result.summary }
        }
        let model = EmotionModel(
            features: options.features, windows: options.windows, normalization: normalization,
            networks: networks, training: info, metrics: metrics)
        log(String(format: "done in %.0f s", Date().timeIntervalSince(started)))
        return TrainingOutcome(model: model, crossValidation: cv, skipped: skipped)
    }

    /// Speaker-grouped folds: speakers are shuffled with the seed and dealt round-robin, so no speaker
    /// is on both sides.
    public static func speakerFolds(_ entries: [ManifestEntry], folds: Int, seed: UInt64) -> [Int] {
        var speakers = Array(Set(entries.map { "\($0.corpus)/\($0.speaker)" })).sorted()
        var rng = SplitMix64(seed: seed &+ 0xF01D)
        speakers.shuffle(using: &rng)
        var foldOf: [String: Int] = [:]
        for (i, s) in speakers.enumerated() { foldOf[s] = i % folds }
        return entries.map { foldOf["\($0.corpus)/\($0.speaker)"]! }
    }

    static func crossValidate(
        _ clips: [ClipWindows], entries: [ManifestEntry], options: TrainingOptions,
        log: @escaping @Sendable (String) -> Void
    ) -> CrossValidationResult {
        let fold = speakerFolds(entries, folds: options.folds, seed: options.seed)
        let predictions = PredictionSlots(count: entries.count)
        DispatchQueue.concurrentPerform(iterations: options.folds) { k in
            let trainSet = Set(entries.indices.filter { fold[$0] != k })
            let (normalization, networks) = train(
                clips, entries: entries, use: trainSet, options: options,
                seed: options.seed &+ UInt64(k + 1) &* 7919)
            let model = EmotionModel(
                features: options.features, windows: options.windows, normalization: normalization,
                networks: networks,
                training: .init(
                    command: "", manifest: "", clips: 0, windows: 0,
                    clipsPerCorpus: [:], speakers: 0, seed: 0, augmentation: "",
                    learner: "", created: ""))
            let runner = ModelRunner(model: model)
            for clip in clips where fold[clip.entry] == k && clip.variant <= 1 {
                var total = ScoreAccumulator()
                for (v, s) in zip(clip.vectors, clip.speechSeconds) { total.add(runner.predict(v), speechSeconds: s) }
                predictions.set(clip.entry, variant: clip.variant, total.scores)
            }
            log("fold \(k + 1)/\(options.folds) done (\(trainSet.count) training clips)")
        }

        func evaluate(_ indices: [Int], variant: Int) -> EvaluationResult {
            var truth: [Emotion] = [], predicted: [Emotion] = [], upset: [Bool] = []
            for i in indices {
                truth.append(entries[i].emotion)
                // A clip without a speech window gets the prior verdict: neutral, not upset.
                let s = predictions.get(i, variant: variant)
                predicted.append(s?.label ?? .neutral)
                upset.append((s?.upset ?? 0) >= 0.5)
            }
            return EvaluationResult(truth: truth, predicted: predicted, predictedUpset: upset)
        }
        let all = Array(entries.indices)
        let corpora = Array(Set(entries.map(\.corpus))).sorted()
        let perCorpus = corpora.map { c in (c, evaluate(all.filter { entries[$0].corpus == c }, variant: 0)) }
        let hasChannel = options.augmentedCopies > 0
        func upsetReport(_ decide: (EmotionScores) -> Bool) -> ClassificationReport {
            ClassificationReport(
                names: ["not_upset", "upset"], truth: all.map { entries[$0].upset ? 1 : 0 },
                predicted: all.map { i in predictions.get(i, variant: 0).map { decide($0) ? 1 : 0 } ?? 0 })
        }
        return CrossValidationResult(
            overall: evaluate(all, variant: 0), perCorpus: perCorpus,
            channel: evaluate(all, variant: hasChannel ? 1 : 0),
            upsetFromHead: upsetReport { $0.upsetFromHead >= 0.5 },
            upsetFromBoth: upsetReport { ($0.upsetFromEmotions + $0.upsetFromHead) / 2 >= 0.5 })
    }

    /// Fits the normalisation and an ensemble on the clips in `use` (all their variants).
    static func train(
        _ clips: [ClipWindows], entries: [ManifestEntry], use: Set<Int>, options: TrainingOptions,
        seed: UInt64
    ) -> (EmotionModel.Normalization, [Network]) {
        let chosen = clips.filter { use.contains($0.entry) && !$0.vectors.isEmpty }
        let n = WindowVector.count
        var mean = [Double](repeating: 0, count: n), square = [Double](repeating: 0, count: n)
        var count = 0.0
        for c in chosen {
            for v in c.vectors {
                for i in 0..<n { mean[i] += Double(v[i]); square[i] += Double(v[i]) * Double(v[i]) }
                count += 1
            }
        }
        for i in 0..<n { mean[i] /= count; square[i] = (square[i] / count - mean[i] * mean[i]).squareRoot() }
        let meanF = mean.map { Float($0) }, scaleF = square.map { Float(max($0, 1e-6)) }
        var samples: [TrainingSample] = []
        for c in chosen {
            let e = entries[c.entry]
            // Every clip variant weighs the same, however many windows it has.
            let w = 1 / Float(c.vectors.count)
            for v in c.vectors {
                let x = (0..<n).map { (v[$0] - meanF[$0]) / scaleF[$0] }
                samples.append(TrainingSample(x: x, emotion: e.emotion.index, upset: e.upset, weight: w))
            }
        }
        let trainer = Trainer(config: options.trainer)
        let networks = (0..<options.trainer.ensemble).map { m in
            trainer.fit(samples, seed: seed &+ UInt64(m) &* 104_729)
        }
        return (EmotionModel.Normalization(mean: meanF, scale: scaleF), networks)
    }
}

final class PredictionSlots: @unchecked Sendable {
    // Guarded by `lock`.
    private var values: [[Int: EmotionScores]]
    private let lock = NSLock()
    init(count: Int) { values = Array(repeating: [:], count: count) }
    func set(_ i: Int, variant: Int, _ v: EmotionScores?) { lock.withLock { values[i][variant] = v } }
    func get(_ i: Int, variant: Int) -> EmotionScores? { lock.withLock { values[i][variant] } }
}
