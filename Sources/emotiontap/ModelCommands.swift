import ArgumentParser
import EmotionCore
import EmotionTraining
import Foundation

struct ModelOption: ParsableArguments {
    @Option(help: "Model file (default: the model built into this binary).")
    var model: String?

    func load() throws -> EmotionModel {
        try orExit {
            if let model { return try EmotionModel.load(URL(fileURLWithPath: model)) }
            return try EmotionModel.builtIn()
        }
    }
}

struct CorpusOptions: ParsableArguments {
    @Option(help: "Folder the manifest's paths are relative to.")
    var corpora: String
    @Option(help: "Manifest CSV (path,corpus,speaker,emotion,intensity,upset,duration_s; default: DIR/manifest.csv).")
    var manifest: String?

    var corporaURL: URL { URL(fileURLWithPath: corpora) }
    var manifestURL: URL {
        manifest.map { URL(fileURLWithPath: $0) } ?? corporaURL.appendingPathComponent("manifest.csv")
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train an emotion model on labelled clips (optionally with speaker-grouped cross-validation)."
    )

    @OptionGroup var corpus: CorpusOptions
    @Option(help: "Where to write the model file (JSON).")
    var out: String
    @Option(help: "Also write the model as a Swift source that builds it into the binary (the default model's file).")
    var embedSwift: String?
    @Option(help: "Random seed: the same seed gives the same model.")
    var seed: UInt64 = 1
    @Option(help: "Speaker-grouped K-fold cross-validation before the final fit (0 = none).")
    var cv: Int = 0
    @Option(
        help: ArgumentHelp(
            "Seed of the speaker partition into folds, apart from --seed: frame networks (--frame-nets) were "
                + "trained on their export's partition (`export --fold-seed`, 1 in make model) and need the same one."))
    var foldSeed: UInt64 = 1
    @Option(help: "Channel-simulated copies of each clip (Opus/G.711, loss, gain, noise).")
    var augment: Int = 2
    @Option(help: "Training epochs.")
    var epochs: Int = 40
    @Option(help: "Networks averaged in the ensemble.")
    var ensemble: Int = 3
    @Option(help: "Hidden layer sizes, comma separated ('none' for a linear model).")
    var hidden: String = "128"
    @Option(help: "Dropout on hidden units.")
    var dropout: Float = 0.2
    @Option(help: "Decoupled weight decay.")
    var weightDecay: Float = 1e-4
    @Option(help: "Share of the 7-way target spread over all classes (label smoothing; 0: one-hot targets).")
    var labelSmoothing: Float = 0
    @Option(help: "Simulated calls per held-out speaker and call kind in cross-validation (0: clip figures only).")
    var calls: Int = 2
    @Option(help: "Share of calm speech the chosen state policy may show upset on held-out calls.")
    var falseAlarmBudget: Double = 0.08
    @Option(help: "Write the cross-validation's out-of-fold clip scores to this CSV (for fusion experiments).")
    var outOfFold: String?
    @Option(
        help: "Write the cross-validation's scored simulated calls to this JSON file (for `emotiontap tune`).")
    var scoredCalls: String?
    @Flag(help: "Add leg-relative inputs: spectral shape, cepstra, pitch and level against the leg's running mean.")
    var legNormalization = false
    @Option(
        help: ArgumentHelp(
            "Fuse the frame networks of `training/frame_model.py` from this folder: frame_net_all_sS.json for "
                + "the model, frame_net_fK_sS.json (trained without fold K) for the cross-validation.",
            valueName: "dir"))
    var frameNets: String?
    @Option(help: "Seed S of the frame networks' file names.")
    var frameNetSeed = 1
    @Option(help: "Weight of the frame network in the fused probabilities.")
    var frameNetWeight: Float = 0.5
    @OptionGroup var features: FeatureOptions

    func validate() throws {
        guard frameNetWeight > 0, frameNetWeight <= 1 else { throw ValidationError("--frame-net-weight 0<...1") }
        guard cv == 0 || (2...20).contains(cv) else { throw ValidationError("--cv must be 0 or 2...20") }
        guard (0...20).contains(calls), (0.001...0.5).contains(falseAlarmBudget) else {
            throw ValidationError("--calls 0...20, --false-alarm-budget 0.001...0.5")
        }
        guard (0...8).contains(augment) else { throw ValidationError("--augment must be 0...8") }
        if scoredCalls != nil, cv < 2 || calls == 0 {
            throw ValidationError("--scored-calls needs --cv 2 or more and --calls 1 or more")
        }
        guard (1...1000).contains(epochs), (1...16).contains(ensemble) else {
            throw ValidationError("--epochs 1...1000, --ensemble 1...16")
        }
        guard hiddenSizes != nil else { throw ValidationError("--hidden must be sizes like 128 or 256,64, or none") }
        guard (0..<0.95).contains(dropout), (0...1).contains(weightDecay) else {
            throw ValidationError("--dropout 0..<0.95, --weight-decay 0...1")
        }
        guard (0..<0.5).contains(labelSmoothing) else { throw ValidationError("--label-smoothing 0..<0.5") }
    }

    var hiddenSizes: [Int]? {
        if hidden == "none" { return [] }
        let sizes = hidden.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return sizes.isEmpty || sizes.contains { !(1...4096).contains($0) } ? nil : sizes
    }

    func run() throws {
        var options = TrainingOptions(corpora: corpus.corporaURL, manifest: corpus.manifestURL)
        options.seed = seed
        options.folds = cv
        options.foldSeed = foldSeed
        options.augmentedCopies = augment
        options.features = features.config
        options.trainer.epochs = epochs
        options.trainer.ensemble = ensemble
        options.trainer.hidden = hiddenSizes!
        options.trainer.dropout = dropout
        options.trainer.weightDecay = weightDecay
        options.trainer.labelSmoothing = labelSmoothing
        options.callsPerKind = calls
        options.legNormalization = legNormalization ? LegNormalization.defaultTracked : nil
        options.falseAlarmBudget = falseAlarmBudget
        if let frameNets {
            let windowFrames = Int((options.windows.length / options.features.frameStep).rounded())
            func load(_ name: String) throws -> FrameNet {
                let path = URL(fileURLWithPath: frameNets).appendingPathComponent(name).path
                return try orExit {
                    try FrameNetFile.load(
                        path: path, windowFrames: windowFrames,
                        hopFrames: Int((options.windows.hop / options.features.frameStep).rounded()))
                }
            }
            options.frameNet = try load("frame_net_all_s\(frameNetSeed).json")
            if cv >= 2 {
                options.foldFrameNets = try (0..<cv).map { try load("frame_net_f\($0)_s\(frameNetSeed).json") }
            }
            options.frameNetWeight = frameNetWeight
        }
        options.command = (["emotiontap"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        let outcome = try orExit { try TrainingRun.run(options) { StandardError.line("train: \($0)") } }
        if let cv = outcome.crossValidation {
            print(
                "Speaker-grouped \(self.cv)-fold cross-validation, clips as stored (\(cv.overall.emotion.total) "
                    + "clips)\n"
            )
            print(cv.overall.emotion.formatted(title: "Seven emotions"))
            print(cv.overall.upset.formatted(title: "Upset / not upset"))
            // Clips judged right beside the accuracy: a mark missed by a few clips shows as such.
            print(
                "Per corpus                 upset acc  judged right  upset F1  calm rec  upset rec   7-class acc  "
                    + "7-class F1  clips")
            for (corpus, r) in cv.perCorpus + [("through a phone channel", cv.channel), ("all", cv.overall)] {
                print(
                    corpus.padding(toLength: 26, withPad: " ", startingAt: 0)
                        + String(
                            format: " %9.3f %13d %9.3f %9.3f %10.3f %13.3f %11.3f %6d", r.upset.accuracy,
                            r.upset.correct,
                            r.upset.macroF1, r.upset.classes[0].recall, r.upset.classes[1].recall,
                            r.emotion.accuracy, r.emotion.macroF1, r.emotion.total))
            }
            print(
                String(
                    format:
                        "\nupset as shipped comes from the 7-way scores; from the upset head instead: accuracy %.3f, "
                        + "macro F1 %.3f; from both: accuracy %.3f, macro F1 %.3f",
                    cv.upsetFromHead.accuracy, cv.upsetFromHead.macroF1, cv.upsetFromBoth.accuracy,
                    cv.upsetFromBoth.macroF1))
            print(CVReport.clipFigures(cv))
            print(CVReport.calibration(cv))
            if let calls = cv.calls { print(CVReport.calls(calls)) }
        }
        // The model first: a side report that cannot be written must not cost the run's model.
        let data = try orExit { try outcome.model.encoded() }
        try orExit("\(out): cannot write model") { try data.write(to: URL(fileURLWithPath: out)) }
        StandardError.line("train: wrote \(out) (\(data.count / 1024) kB)")
        if let embedSwift {
            try orExit("\(embedSwift): cannot write") {
                try outcome.model.swiftSource().write(toFile: embedSwift, atomically: true, encoding: .utf8)
            }
            StandardError.line("train: wrote \(embedSwift)")
        }
        guard let cv = outcome.crossValidation else { return }
        if let scoredCalls {
            guard let calls = cv.calls else {
                StandardError.line("emotiontap: \(scoredCalls): not written: no held-out speaker had calls to score")
                throw ExitCode(2)
            }
            let file = ScoredCallsFile(folds: calls.folds, calibration: cv.calibration, command: options.command)
            try orExit("\(scoredCalls): cannot write") {
                try file.encoded().write(to: URL(fileURLWithPath: scoredCalls))
            }
        }
        if let outOfFold {
            try orExit("\(outOfFold): cannot write") {
                try CVReport.outOfFoldCSV(cv).write(toFile: outOfFold, atomically: true, encoding: .utf8)
            }
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract:
            "Evaluate a model on labelled clips, each clip predicted on its own as a fresh live leg would hear it, "
            + "and on simulated calls built from the same clips.",
        discussion: """
            Clip figures: accuracy, macro F1, balanced accuracy, calm and upset recall and ROC AUC, each beside the \
            majority baseline, overall and per corpus. Call figures: calls of each kind (calm, upset, calm -> upset \
            -> calm, calm -> 100 s upset -> calm) per speaker, through a random phone channel with loss, streamed through the live decision \
            layer with the model's own state policy. On clips the model was trained on, both are optimistic: \
            `train --cv` gives the speaker-independent figures.
            """
    )

    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var modelOption: ModelOption
    @Option(help: "Simulated calls per speaker and call kind (0: clip figures only).")
    var calls: Int = 1
    @Option(help: "Seed for the simulated calls.")
    var seed: UInt64 = 1
    @Flag(help: "Print one JSON object instead of the reports.")
    var json = false

    func validate() throws {
        guard (0...20).contains(calls) else { throw ValidationError("--calls must be 0...20") }
    }

    func run() throws {
        let model = try modelOption.load()
        let entries = try orExit { try Manifest.read(corpus.manifestURL) }
        let corporaURL = corpus.corporaURL
        let results = parallelMap(count: entries.count, makeState: { try? ClipPredictor(model: model) }) {
            (predictor: inout ClipPredictor, i: Int) -> EvalSlot in
            do {
                let audio = try AudioInput.load(
                    corporaURL.appendingPathComponent(entries[i].path), sampleRate: model.features.sampleRate)
                return .success(predictor.predict(audio.samples))
            } catch {
                return .failure("\(error)")
            }
        }
        var truth: [Emotion] = [], predicted: [Emotion] = [], upset: [Bool] = []
        var scoresForAUC: [Float] = [], corpusOf: [String] = []
        var skipped = 0
        for (i, entry) in entries.enumerated() {
            switch results[i] {
            case .success(let scores):
                truth.append(entry.emotion)
                predicted.append(scores?.label ?? .neutral)
                upset.append((scores?.upset ?? 0) >= 0.5)
                scoresForAUC.append(scores?.upset ?? 0)
                corpusOf.append(entry.corpus)
            case .failure(let why):
                skipped += 1
                StandardError.line("emotiontap: skipped \(entry.path): \(why)")
            case nil:
                skipped += 1
            }
        }
        let result = EvaluationResult(truth: truth, predicted: predicted, predictedUpset: upset)
        let auc = CalibrationFit.rocAUC(scores: scoresForAUC, truth: truth.map(\.isUpset))
        var perCorpus: [(String, ClipFigures)] = []
        for c in Array(Set(corpusOf)).sorted() {
            let idx = corpusOf.indices.filter { corpusOf[$0] == c }
            let r = EvaluationResult(
                truth: idx.map { truth[$0] }, predicted: idx.map { predicted[$0] },
                predictedUpset: idx.map { upset[$0] })
            let a = CalibrationFit.rocAUC(scores: idx.map { scoresForAUC[$0] }, truth: idx.map { truth[$0].isUpset })
            perCorpus.append((c, ClipFigures(r, auc: a)))
        }
        let overall = ClipFigures(result, auc: auc)
        let callFigures = calls > 0 ? try scoreCalls(model: model, entries: entries) : nil
        if json {
            var object = result.json(clips: truth.count, skipped: skipped)
            object["clip_figures"] = overall.json
            object["per_corpus"] = Dictionary(uniqueKeysWithValues: perCorpus.map { ($0.0, $0.1.json) })
            if let callFigures { object["calls"] = CVReport.json(callFigures) }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(truth.count) clips evaluated, \(skipped) skipped\n")
            print(result.emotion.formatted(title: "Seven emotions"))
            print(result.upset.formatted(title: "Upset / not upset"))
            print(ClipFigures.header)
            for (c, f) in perCorpus + [("all", overall)] { print(f.row(c)) }
            if let callFigures {
                print(CVReport.callHeader(calls: callFigures.calls, what: "built from these clips' speakers"))
                print(
                    CVReport.callRow(
                        String(
                            format: "model's policy (%.2f/%.3f/%d/%.3f)", model.decision.smoothing,
                            model.decision.enterUpset, model.decision.enterWindows, model.decision.exitUpset),
                        callFigures))
            }
        }
    }

    /// Calls from the manifest's speakers, scored with the model before calibration and replayed with its
    /// calibration and policy (exactly what a live leg does, in that order).
    func scoreCalls(model: EmotionModel, entries: [ManifestEntry]) throws -> CallFigures {
        let plans = CallSimulation.plan(
            entries: entries, use: Array(entries.indices), callsPerKind: calls, seed: seed)
        let raw = CallSimulation.uncalibrated(model)
        let corporaURL = corpus.corporaURL
        let scored = parallelMap(
            count: plans.count,
            makeState: { try? ClipPredictor(model: raw) }
        ) { (predictor: inout ClipPredictor, k: Int) -> ScoredCall? in
            try? CallSimulation.score(plan: plans[k], entries: entries, corpora: corporaURL, predictor: predictor)
        }
        let calls = scored.compactMap { $0 ?? nil }
        return CallReplay.figures(calls, policy: LegPolicy().tuned(by: model.decision), calibration: model.calibration)
    }
}

/// The clip-level figures, each beside the majority baseline.
struct ClipFigures {
    var upset: ClassificationReport
    var emotion: ClassificationReport
    var auc: Double

    init(_ r: EvaluationResult, auc: Double) {
        upset = r.upset
        emotion = r.emotion
        self.auc = auc
    }

    var majorityShare: Double {
        let upsetCount = upset.classes[1].support
        return Double(max(upsetCount, upset.total - upsetCount)) / Double(max(1, upset.total))
    }
    var majorityEmotionShare: Double {
        Double(emotion.classes.map(\.support).max() ?? 0) / Double(max(1, emotion.total))
    }

    static let header =
        "Clip figures (majority baseline in brackets)\n"
        + "corpus        upset acc       macro F1  balanced  calm rec  upset rec  ROC AUC  7-class acc     "
        + "7-class F1  clips"

    func row(_ name: String) -> String {
        let m = majorityShare
        return name.padding(toLength: 12, withPad: " ", startingAt: 0)
            + String(
                format: " %.3f (%.3f) %.3f (%.3f) %8.3f %9.3f %10.3f %8.3f  %.3f (%.3f) %7.3f %6d", upset.accuracy, m,
                upset.macroF1, m / (1 + m), upset.macroRecall, upset.classes[0].recall, upset.classes[1].recall, auc,
                emotion.accuracy, majorityEmotionShare, emotion.macroF1, upset.total)
    }

    var json: [String: Any] {
        [
            "upset_accuracy": upset.accuracy, "upset_macro_f1": upset.macroF1, "balanced_accuracy": upset.macroRecall,
            "calm_recall": upset.classes[0].recall, "upset_recall": upset.classes[1].recall, "roc_auc": auc,
            "emotion_accuracy": emotion.accuracy, "emotion_macro_f1": emotion.macroF1,
            "majority_upset_accuracy": majorityShare, "majority_emotion_accuracy": majorityEmotionShare,
            "clips": upset.total,
        ]
    }
}

enum EvalSlot: Sendable {
    case success(EmotionScores?)
    case failure(String)
}
