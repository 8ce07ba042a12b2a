import ArgumentParser
import EmotionCore
import EmotionProtocol
import Foundation

enum AnalyzeFormat: String, ExpressibleByArgument, CaseIterable {
    case jsonl, text
}

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Print the emotion verdict of each window of WAV files: the offline mirror of the live events."
    )

    @Argument(help: "WAV files.")
    var files: [String]
    @OptionGroup var modelOption: ModelOption
    @OptionGroup var channel: ChannelOption
    @Option(help: "jsonl: one JSON object a window; text: a readable timeline.")
    var format: AnalyzeFormat = .jsonl

    func run() throws {
        let model = try modelOption.load()
        let selection = try channel.selection()
        let predictor = try ClipPredictor(model: model)
        let out = StandardOutput()
        let failures = forEachAudioFile(files, channel: selection, sampleRate: model.features.sampleRate) {
            file, audio in
            if format == .text {
                out.write(String(format: "%@: %.1f s", file, audio.duration))
                out.write("  window          speech  upset  state (as a live leg with this model's policy)")
            }
            var total = ScoreAccumulator()
            // The live decision layer, so that the text timeline shows the state a switch would be told.
            var decisions = LegDecisions(policy: LegPolicy().tuned(by: model.decision), role: "customer")
            for (window, scores) in predictor.windows(of: audio.samples) {
                if let scores { total.add(scores, speechSeconds: window.speechSeconds) }
                let changed = !decisions.add(window: window, scores: scores).filter {
                    if case .stateChanged = $0 { return true } else { return false }
                }.isEmpty
                switch format {
                case .jsonl: out.write(Self.json(window, scores, file: files.count > 1 ? file : nil))
                case .text: out.write(Self.text(window, scores, state: decisions.mood, changed: changed))
                }
            }
            if format == .text, let overall = total.scores {
                let summary = decisions.summary
                out.write(
                    String(
                        format: "  overall: %@, upset %.2f (%d windows with speech); shown upset %.0f %% of speech",
                        overall.label.rawValue, overall.upset, total.windows, summary.upsetFraction * 100))
            }
        }
        out.flush()
        if failures > 0 { throw ExitCode(2) }
    }

    /// The live `emotion` event's window fields (the protocol's own encoding), without the leg's state.
    static func json(_ w: WindowFeatures, _ s: EmotionScores?, file: String?) -> String {
        JSON.object(EmotionReading(window: w, scores: s).fields(file: file)).serialized
    }

    static func text(_ w: WindowFeatures, _ s: EmotionScores?, state: LegMood, changed: Bool) -> String {
        let span = String(format: "  %5.1f-%5.1f s  %5.0f%%", w.start, w.end, w.speechFraction * 100)
        guard let s else { return span + "      -  (silence)" }
        let bar = String(repeating: "#", count: Int((s.upset * 10).rounded()))
        let top = zip(Emotion.allCases, s.probabilities).sorted { $0.1 > $1.1 }.prefix(2)
            .map { String(format: "%@ %.0f%%", $0.0.rawValue, $0.1 * 100) }.joined(separator: ", ")
        return span
            + String(
                format: "  %5.2f  %@  %-10@ [%@]", s.upset,
                state == .upset ? (changed ? "UPSET<" : "UPSET ") : "calm  ",
                bar.padding(toLength: 10, withPad: " ", startingAt: 0), top)
    }
}
