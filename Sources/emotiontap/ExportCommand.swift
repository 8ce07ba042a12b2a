import ArgumentParser
import EmotionCore
import EmotionTraining
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the frames and windows of labelled clips as NumPy files, for training outside Swift.",
        discussion: """
            Writes frames.npy (one row per frame: the frame features plus the speech gate's verdict), windows.npy \
            (the model's window vectors), window_spans.npy, clips.csv and meta.json into --out. The numbers are \
            the ones the live path computes, so a model trained on them sees what it will see on calls.
            """
    )

    @OptionGroup var corpus: CorpusOptions
    @Option(help: "Folder to write into (created if missing).")
    var out: String
    @Option(help: "Channel-simulated copies of each clip (Opus/G.711, loss, gain, noise), as `train` makes them.")
    var augment: Int = 0
    @Option(help: "Random seed for the channel copies (the same seed as `train` gives the same copies).")
    var seed: UInt64 = 1
    @Option(
        help: "Speaker-grouped folds written to clips.csv's fold column (the ones `train --cv K --fold-seed S` uses).")
    var folds: Int = 5
    @Option(help: "Seed of the speaker partition into folds (the same as `train --fold-seed` gives the same folds).")
    var foldSeed: UInt64 = 1
    @Flag(help: "Also write frames_mel.npy: each frame's mel bands in dB (inputs the shipped model does not read yet).")
    var melBands = false
    @OptionGroup var features: FeatureOptions

    func validate() throws {
        guard (0...8).contains(augment) else { throw ValidationError("--augment must be 0...8") }
        guard (1...20).contains(folds) else { throw ValidationError("--folds must be 1...20") }
    }

    func run() throws {
        let entries = try orExit { try Manifest.read(corpus.manifestURL) }
        let result = try orExit {
            try FeatureExport.run(
                entries: entries, corpora: corpus.corporaURL, out: URL(fileURLWithPath: out),
                features: features.config, windows: WindowConfig(), augmentedCopies: augment, seed: seed, folds: folds,
                foldSeed: foldSeed, melBands: melBands
            ) { StandardError.line("export: \($0)") }
        }
        for (path, why) in result.skipped.prefix(20) { StandardError.line("export: skipped \(path): \(why)") }
        StandardError.line(
            "export: \(result.clips) clip variants, \(result.frames) frames, \(result.windows) windows in \(out)"
                + (result.skipped.isEmpty ? "" : ", \(result.skipped.count) clips skipped"))
    }
}
