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
    @OptionGroup var features: FeatureOptions

    func validate() throws {
        guard cv == 0 || (2...20).contains(cv) else { throw ValidationError("--cv must be 0 or 2...20") }
        guard (0...8).contains(augment) else { throw ValidationError("--augment must be 0...8") }
        guard (1...1000).contains(epochs), (1...16).contains(ensemble) else {
            throw ValidationError("--epochs 1...1000, --ensemble 1...16")
        }
        guard hiddenSizes != nil else { throw ValidationError("--hidden must be sizes like 128 or 256,64, or none") }
        guard (0..<0.95).contains(dropout), (0...1).contains(weightDecay) else {
            throw ValidationError("--dropout 0..<0.95, --weight-decay 0...1")
        }
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
        options.augmentedCopies = augment
        options.features = features.config
        options.trainer.epochs = epochs
        options.trainer.ensemble = ensemble
        options.trainer.hidden = hiddenSizes!
        options.trainer.dropout = dropout
        options.trainer.weightDecay = weightDecay
        options.command = (["emotiontap"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        let outcome = try orExit { try TrainingRun.run(options) { StandardError.line("train: \($0)") } }
        if let cv = outcome.crossValidation {
            print(
                "Speaker-grouped \(self.cv)-fold cross-validation, clips as stored (\(cv.overall.emotion.total) "
                    + "clips)\n"
            )
            print(cv.overall.emotion.formatted(title: "Seven emotions"))
            print(cv.overall.upset.formatted(title: "Upset / not upset"))
            print("Per corpus                 upset acc  upset F1   7-class acc  7-class F1  clips")
            for (corpus, r) in cv.perCorpus + [("through a phone channel", cv.channel), ("all", cv.overall)] {
                print(
                    corpus.padding(toLength: 26, withPad: " ", startingAt: 0)
                        + String(
                            format: " %9.3f %9.3f %12.3f %11.3f %6d", r.upset.accuracy, r.upset.macroF1,
                            r.emotion.accuracy, r.emotion.macroF1, r.emotion.total))
            }
            print(
                String(
                    format:
                        "\nupset as shipped comes from the 7-way scores; from the upset head instead: accuracy %.3f, "
                        + "macro F1 %.3f; from both: accuracy %.3f, macro F1 %.3f",
                    cv.upsetFromHead.accuracy, cv.upsetFromHead.macroF1, cv.upsetFromBoth.accuracy,
                    cv.upsetFromBoth.macroF1))
        }
        let data = try orExit { try outcome.model.encoded() }
        try orExit("\(out): cannot write model") { try data.write(to: URL(fileURLWithPath: out)) }
        StandardError.line("train: wrote \(out) (\(data.count / 1024) kB)")
        if let embedSwift {
            try orExit("\(embedSwift): cannot write") {
                try outcome.model.swiftSource().write(toFile: embedSwift, atomically: true, encoding: .utf8)
            }
            StandardError.line("train: wrote \(embedSwift)")
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract:
            "Evaluate a model on labelled clips, each clip predicted on its own as a fresh live leg would hear it."
    )

    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var modelOption: ModelOption
    @Flag(help: "Print one JSON object instead of the reports.")
    var json = false

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
        var skipped = 0
        for (i, entry) in entries.enumerated() {
            switch results[i] {
            case .success(let scores):
                truth.append(entry.emotion)
                predicted.append(scores?.label ?? .neutral)
                upset.append((scores?.upset ?? 0) >= 0.5)
            case .failure(let why):
                skipped += 1
                StandardError.line("emotiontap: skipped \(entry.path): \(why)")
            case nil:
                skipped += 1
            }
        }
        let result = EvaluationResult(truth: truth, predicted: predicted, predictedUpset: upset)
        if json {
            let data = try JSONSerialization.data(
                withJSONObject: result.json(clips: truth.count, skipped: skipped), options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(truth.count) clips evaluated, \(skipped) skipped\n")
            print(result.emotion.formatted(title: "Seven emotions"))
            print(result.upset.formatted(title: "Upset / not upset"))
        }
    }
}

enum EvalSlot: Sendable {
    case success(EmotionScores?)
    case failure(String)
}
