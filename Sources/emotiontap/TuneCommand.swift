import ArgumentParser
import EmotionCore
import EmotionTraining
import Foundation

struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract:
            "Search the state and escalation rules again on the simulated calls a cross-validation scored, "
            + "without training the models again.",
        discussion: """
            Reads the file `train --scored-calls` wrote (every held-out window's score, per fold), replays the calls \
            through the live decision layer under every candidate rule, and prints the call figures: each fold \
            judged with the rule chosen on the other folds, and the rule chosen on all of them. With --model and \
            --out, writes that model with the newly chosen rule (its networks and calibration unchanged; the \
            calibration must be the one the calls were scored with).
            """
    )

    @Option(help: "Scored calls from `emotiontap train --scored-calls`.")
    var scoredCalls: String
    @Option(help: "Share of calm speech the chosen state policy may show upset on held-out calls.")
    var falseAlarmBudget = 0.08
    @Option(help: "A model file to write again with the chosen rule (the model those calls were scored with).")
    var model: String?
    @Option(help: "Where to write that model.")
    var out: String?
    @Option(help: "Also write that model as the Swift source built into the binary (BuiltInModel.swift).")
    var embedSwift: String?

    func validate() throws {
        guard (0.001...0.5).contains(falseAlarmBudget) else {
            throw ValidationError("--false-alarm-budget 0.001...0.5")
        }
        guard (model == nil) == (out == nil) else { throw ValidationError("--model and --out go together") }
        guard embedSwift == nil || model != nil else { throw ValidationError("--embed-swift needs --model and --out") }
    }

    func run() throws {
        let file = try orExit { try ScoredCallsFile.load(URL(fileURLWithPath: scoredCalls)) }
        var base: EmotionModel?
        if let model {
            let m = try orExit { try EmotionModel.load(URL(fileURLWithPath: model)) }
            guard m.calibration == file.calibration else {
                StandardError.line(
                    "emotiontap: \(model): its calibration (\(m.calibration.slope), \(m.calibration.intercept)) is not "
                        + "the one the calls were scored with (\(file.calibration.slope), \(file.calibration.intercept))"
                )
                throw ExitCode(2)
            }
            base = m
        }
        let folds = file.scoredFolds
        let calls = TrainingRun.tunePolicy(folds, calibration: file.calibration, budget: falseAlarmBudget) {
            StandardError.line("tune: \($0)")
        }
        print(CVReport.calls(calls))
        print(Self.headroom(folds.flatMap { $0 }, calibration: file.calibration))
        if var m = base, let out {
            m.decision = calls.chosen
            let data = try orExit { try m.encoded() }
            try orExit("\(out): cannot write model") { try data.write(to: URL(fileURLWithPath: out)) }
            StandardError.line("tune: wrote \(out)")
            if let embedSwift {
                let command = (["emotiontap"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
                try orExit("\(embedSwift): cannot write") {
                    try m.swiftSource(ruleCommand: command).write(toFile: embedSwift, atomically: true, encoding: .utf8)
                }
                StandardError.line("tune: wrote \(embedSwift)")
            }
        }
    }

    /// The headroom table: whether any rule over recent upset levels could escalate stretches without
    /// escalating calm speech.
    static func headroom(_ calls: [ScoredCall], calibration: UpsetCalibration) -> String {
        var out =
            "Escalation headroom: the highest mean calibrated upset over K scored windows in a row, per calm segment "
        out += "and per upset stretch\n"
        out += "K    calm segments: 50 %   90 %   99 %    max | stretches: 10 %   50 %   90 % | stretches above "
        out += "the calm 99 % / max\n"
        for k in [5, 10, 15, 20, 30, 40] {
            let h = EscalationHeadroom(calls, calibration: calibration, windows: k)
            let q = EscalationHeadroom.quantile
            let calm99 = q(h.calmPeaks, 0.99), calmMax = h.calmPeaks.last ?? .nan
            out += String(
                format:
                    "%-4d %20.3f %6.3f %6.3f %6.3f | %16.3f %6.3f %6.3f | %6.1f %% / %.1f %% (%d calm, %d stretches)\n",
                k, q(h.calmPeaks, 0.5), q(h.calmPeaks, 0.9), calm99, calmMax, q(h.stretchPeaks, 0.1),
                q(h.stretchPeaks, 0.5), q(h.stretchPeaks, 0.9), h.stretchesAbove(calm99) * 100,
                h.stretchesAbove(calmMax) * 100, h.calmPeaks.count, h.stretchPeaks.count)
        }
        return out
    }
}
