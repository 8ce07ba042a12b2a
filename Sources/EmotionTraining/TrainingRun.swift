import EmotionCore
import Foundation

public struct TrainingOptions: Sendable {
    public var corpora: URL
    public var manifest: URL
    public var seed: UInt64 = 1
    /// Speaker-grouped cross-validation folds; 0 or 1 skips cross-validation.
    public var folds = 0
    /// Seed of the speaker partition into folds, apart from `seed`: the frame networks' fold copies were
    /// trained on an export's partition (`export --fold-seed`, 1 in `make model`), so another training
    /// seed must keep it, or each fold's network would have heard that fold's speakers.
    public var foldSeed: UInt64 = 1
    /// Channel-simulated copies of each clip added to the training data.
    public var augmentedCopies = 2
    public var features = FeatureConfig()
    public var windows = WindowConfig()
    public var trainer = TrainerConfig()
    public var command = ""
    /// Simulated calls per speaker and kind scored in cross-validation (0 = clip figures only).
    public var callsPerKind = 2
    /// Share of calm speech the tuned policy may show upset (chosen with a margin under the 10 % target).
    public var falseAlarmBudget = 0.08
    /// Train with leg-relative inputs (`LegNormalization`) tracking these window entries; nil for none.
    public var legNormalization: [String]?
    /// A frame network (trained by `training/frame_model.py`) fused into the model, with the one trained
    /// without each fold for cross-validation (`foldFrameNets[k]` never saw fold `k`'s speakers).
    public var frameNet: FrameNet?
    public var foldFrameNets: [FrameNet]?
    public var frameNetWeight: Float = 0.5

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
    /// Fitted on the held-out clips' raw upset probabilities (as stored and through a channel).
    public var calibration: UpsetCalibration
    public var reliability: [(predicted: Double, observed: Double, count: Int)]
    /// ROC AUC of the upset probability on clips as stored; the share of the majority class (always "upset").
    public var upsetAUC: Double
    public var majorityShare: Double
    /// Call-level figures on held-out speakers' simulated calls.
    public var calls: CallResults?
    /// Out-of-fold clip scores (raw upset), for fusion experiments: (entry, variant, scores).
    public var outOfFold: [(Int, Int, EmotionScores)]
}

public struct CallResults: Sendable {
    public var calls: Int
    /// The fixed version 1 policy, uncalibrated.
    public var untuned: CallFigures
    /// Each fold judged with the policy chosen on the other folds: the honest figure.
    public var heldOut: CallFigures
    public var heldOutChoices: [DecisionTuning]
    /// The policy chosen on all folds (shipped), and its figures on the same calls (optimistic).
    public var chosen: DecisionTuning
    public var chosenFigures: CallFigures
    /// The scored calls the search replayed, per fold (for `train --scored-calls`).
    public var folds: [[ScoredCall]]
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
        let (normalization, networks, legNormalization) = train(
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
            networks: networks, training: info, metrics: metrics,
            calibration: cv?.calibration ?? .identity, decision: cv?.calls?.chosen ?? .untuned,
            legNormalization: legNormalization, frameNet: options.frameNet, frameNetWeight: options.frameNetWeight)
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
        let fold = speakerFolds(entries, folds: options.folds, seed: options.foldSeed)
        let predictions = PredictionSlots(count: entries.count)
        let foldCalls = IndexedResults<[ScoredCall]>(count: options.folds)
        DispatchQueue.concurrentPerform(iterations: options.folds) { k in
            let trainSet = Set(entries.indices.filter { fold[$0] != k })
            let (normalization, networks, legNormalization) = train(
                clips, entries: entries, use: trainSet, options: options,
                seed: options.seed &+ UInt64(k + 1) &* 7919)
            let model = EmotionModel(
                features: options.features, windows: options.windows, normalization: normalization,
                networks: networks,
                training: .init(
                    command: "", manifest: "", clips: 0, windows: 0,
                    clipsPerCorpus: [:], speakers: 0, seed: 0, augmentation: "",
                    learner: "", created: ""), legNormalization: legNormalization,
                frameNet: options.foldFrameNets?[k], frameNetWeight: options.frameNetWeight)
            let runner = ModelRunner(model: model)
            let heldOut = clips.filter { fold[$0.entry] == k && $0.variant <= 1 }
            if runner.readsFrames {
                // A frame network reads every frame: each held-out clip goes through the live path again.
                guard let predictor = try? ClipPredictor(model: model) else { return }
                for clip in heldOut {
                    guard
                        let samples = try? DatasetBuilder.samples(
                            of: entries[clip.entry], entry: clip.entry, variant: clip.variant, corpora: options.corpora,
                            features: options.features, seed: options.seed)
                    else { continue }
                    predictions.set(clip.entry, variant: clip.variant, predictor.predict(samples))
                }
            } else {
                for clip in heldOut {
                    // Each clip on its own, as a fresh leg hears it.
                    runner.resetLeg()
                    var total = ScoreAccumulator()
                    for w in clip.vectors.indices {
                        let scores = runner.predict(
                            vector: clip.vectors[w], levelDB: clip.levels[w], speechSeconds: clip.speechSeconds[w])
                        total.add(scores, speechSeconds: clip.speechSeconds[w])
                    }
                    predictions.set(clip.entry, variant: clip.variant, total.scores)
                }
            }
            log("fold \(k + 1)/\(options.folds) trained (\(trainSet.count) training clips)")
            if options.callsPerKind > 0, let predictor = try? ClipPredictor(model: model) {
                let held = entries.indices.filter { fold[$0] == k }
                let plans = CallSimulation.plan(
                    entries: entries, use: held, callsPerKind: options.callsPerKind, seed: options.seed &+ UInt64(k))
                var scored: [ScoredCall] = []
                for plan in plans {
                    if let call = try? CallSimulation.score(
                        plan: plan, entries: entries, corpora: options.corpora, predictor: predictor)
                    {
                        scored.append(call)
                    }
                }
                foldCalls.set(k, scored)
                log("fold \(k + 1)/\(options.folds): \(scored.count) simulated calls scored")
            }
        }

        // Calibration from the held-out clips, as stored and through a channel.
        var rawUpset: [Float] = [], rawTruth: [Bool] = []
        var outOfFold: [(Int, Int, EmotionScores)] = []
        for i in entries.indices {
            for variant in 0...1 {
                guard let s = predictions.get(i, variant: variant) else { continue }
                rawUpset.append(s.upset)
                rawTruth.append(entries[i].upset)
                outOfFold.append((i, variant, s))
            }
        }
        let calibration = CalibrationFit.fit(raw: rawUpset, truth: rawTruth)
        func evaluate(_ indices: [Int], variant: Int) -> EvaluationResult {
            var truth: [Emotion] = [], predicted: [Emotion] = [], upset: [Bool] = []
            for i in indices {
                truth.append(entries[i].emotion)
                // A clip without a speech window gets the prior verdict: neutral, not upset.
                let s = predictions.get(i, variant: variant)
                predicted.append(s?.label ?? .neutral)
                upset.append(s.map { calibration.apply($0.upset) >= 0.5 } ?? false)
            }
            return EvaluationResult(truth: truth, predicted: predicted, predictedUpset: upset)
        }
        var callResults: CallResults?
        let scoredFolds = foldCalls.all.map { $0 ?? [] }
        if scoredFolds.contains(where: { !$0.isEmpty }) {
            callResults = tunePolicy(
                scoredFolds, calibration: calibration, budget: options.falseAlarmBudget, log: log)
        }
        let stored = entries.indices.compactMap { i in predictions.get(i, variant: 0).map { (i, $0) } }
        let auc = CalibrationFit.rocAUC(scores: stored.map { $0.1.upset }, truth: stored.map { entries[$0.0].upset })
        let upsetShare = Double(entries.filter(\.upset).count) / Double(max(1, entries.count))
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
            upsetFromBoth: upsetReport { ($0.upsetFromEmotions + $0.upsetFromHead) / 2 >= 0.5 },
            calibration: calibration,
            reliability: CalibrationFit.reliability(raw: rawUpset, truth: rawTruth, calibration: calibration),
            upsetAUC: auc, majorityShare: max(upsetShare, 1 - upsetShare), calls: callResults,
            outOfFold: outOfFold)
    }

    /// Policy for the false-alarm budget: each candidate replayed on every fold's calls; each fold then
    /// judged with the candidate chosen on the other folds (honest), and the shipped one chosen on all.
    public static func tunePolicy(
        _ folds: [[ScoredCall]], calibration: UpsetCalibration, budget: Double,
        log: @escaping @Sendable (String) -> Void
    ) -> CallResults {
        let candidates = PolicySearch.candidates
        let base = LegPolicy()
        let table = IndexedResults<[CallFigures]>(count: folds.count)
        DispatchQueue.concurrentPerform(iterations: folds.count) { k in
            let calls = folds[k].map { CallReplay.Prepared($0, calibration: calibration) }
            table.set(k, candidates.map { CallReplay.figures(calls, policy: base.tuned(by: $0)) })
        }
        let perFold = table.all.map { $0 ?? [] }
        func summed(_ ks: [Int]) -> [CallFigures] {
            candidates.indices.map { c in ks.reduce(CallFigures()) { $0 + perFold[$1][c] } }
        }
        var heldOut = CallFigures()
        var choices: [DecisionTuning] = []
        for k in folds.indices {
            let others = folds.indices.filter { $0 != k }
            let c = PolicySearch.choose(
                summed(others), candidates: candidates, budget: budget,
                escalationMarginSeconds: PolicySearch.escalationMarginSeconds)
            choices.append(candidates[c])
            heldOut = heldOut + perFold[k][c]
        }
        let all = summed(Array(folds.indices))
        let c = PolicySearch.choose(
            all, candidates: candidates, budget: budget, escalationMarginSeconds: PolicySearch.escalationMarginSeconds)
        var chosen = candidates[c]
        chosen.chosenFor = String(
            format: "calm speech shown upset <= %.0f %% on held-out speakers' simulated calls, no false escalation "
                + "(nor escalating %.0f s sooner), then the most upset stretches caught, then the most escalated, "
                + "then the fewest state changes",
            budget * 100, PolicySearch.escalationMarginSeconds)
        let everything = folds.flatMap { $0 }
        let untuned = CallReplay.figures(everything, policy: base.tuned(by: .untuned), calibration: .identity)
        let shipped = base.tuned(by: chosen)
        log(
            "policy chosen: smoothing \(chosen.smoothing), enter \(chosen.enterUpset), exit \(chosen.exitUpset), "
                + "escalate at \(chosen.escalateUpset.map { "\($0)" } ?? "any upset") "
                + "for \(shipped.escalateUpsetSeconds) s within \(shipped.escalateWithinSeconds) s")
        return CallResults(
            calls: everything.count, untuned: untuned, heldOut: heldOut, heldOutChoices: choices, chosen: chosen,
            chosenFigures: all[c], folds: folds)
    }

    /// Fits the normalisation and an ensemble on the clips in `use` (all their variants).
    ///
    /// With per-leg normalisation, each training clip is heard as if mid-call: its leg baseline first takes
    /// in a random 0-12 of the same speaker's other clips (same channel variant), in random order, as a
    /// call's earlier speech would; zero context (a fresh leg) is among the draws.
    static func train(
        _ clips: [ClipWindows], entries: [ManifestEntry], use: Set<Int>, options: TrainingOptions,
        seed: UInt64
    ) -> (EmotionModel.Normalization, [Network], LegNormalization?) {
        let chosen = clips.filter { use.contains($0.entry) && !$0.vectors.isEmpty }
        let base = WindowVector.count
        var leg: LegNormalization?
        if let tracked = options.legNormalization {
            var prior = [Double](repeating: 0, count: tracked.count), count = 0.0
            let probe = LegNormalization(tracked: tracked, priorMean: [Float](repeating: 0, count: tracked.count))
            let indices = probe.vectorIndices ?? []
            for c in chosen {
                for v in c.vectors {
                    for (k, i) in indices.enumerated() where i >= 0 { prior[k] += Double(v[i]) }
                    count += 1
                }
            }
            leg = LegNormalization(tracked: tracked, priorMean: prior.map { Float($0 / max(1, count)) })
        }
        // Model inputs per window: the vector, then the leg-relative entries.
        var rows: [(clip: Int, input: [Float])] = []
        rows.reserveCapacity(chosen.reduce(0) { $0 + $1.vectors.count })
        if let leg {
            var bySpeakerVariant: [String: [Int]] = [:]
            for (k, c) in chosen.enumerated() {
                let e = entries[c.entry]
                bySpeakerVariant["\(e.corpus)/\(e.speaker)/\(c.variant)", default: []].append(k)
            }
            var rng = SplitMix64(seed: seed ^ 0x1E6B_A5E1)
            var baseline = LegBaseline(leg)
            var relative = [Float](repeating: 0, count: baseline.count)
            func hear(_ clip: ClipWindows, _ w: Int) {
                baseline.relative(
                    vector: clip.vectors[w], levelDB: clip.levels[w], speechSeconds: clip.speechSeconds[w],
                    into: &relative)
            }
            for (k, c) in chosen.enumerated() {
                let e = entries[c.entry]
                let peers = bySpeakerVariant["\(e.corpus)/\(e.speaker)/\(c.variant)"] ?? []
                baseline.reset()
                let contextCount = Int.random(in: 0...12, using: &rng)
                for _ in 0..<contextCount where peers.count > 1 {
                    let p = chosen[peers.randomElement(using: &rng)!]
                    guard p.entry != c.entry else { continue }
                    for w in p.vectors.indices { hear(p, w) }
                }
                for w in c.vectors.indices {
                    hear(c, w)
                    rows.append((k, c.vectors[w] + relative))
                }
            }
        } else {
            for (k, c) in chosen.enumerated() { for v in c.vectors { rows.append((k, v)) } }
        }
        let n = base + (leg?.tracked.count ?? 0)
        var mean = [Double](repeating: 0, count: n), square = [Double](repeating: 0, count: n)
        for r in rows {
            for i in 0..<n { mean[i] += Double(r.input[i]); square[i] += Double(r.input[i]) * Double(r.input[i]) }
        }
        let count = Double(max(1, rows.count))
        for i in 0..<n { mean[i] /= count; square[i] = max(0, square[i] / count - mean[i] * mean[i]).squareRoot() }
        let meanF = mean.map { Float($0) }, scaleF = square.map { Float(max($0, 1e-6)) }
        var samples: [TrainingSample] = []
        samples.reserveCapacity(rows.count)
        for r in rows {
            let c = chosen[r.clip]
            let e = entries[c.entry]
            // Every clip variant weighs the same, however many windows it has.
            let w = 1 / Float(c.vectors.count)
            let x = (0..<n).map { (r.input[$0] - meanF[$0]) / scaleF[$0] }
            samples.append(TrainingSample(x: x, emotion: e.emotion.index, upset: e.upset, weight: w))
        }
        let trainer = Trainer(config: options.trainer)
        let networks = (0..<options.trainer.ensemble).map { m in
            trainer.fit(samples, seed: seed &+ UInt64(m) &* 104_729)
        }
        return (EmotionModel.Normalization(mean: meanF, scale: scaleF), networks, leg)
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
