import EmotionCore
import EmotionTraining
import Foundation

/// The cross-validation tables `train --cv` prints (and docs/MODEL.md keeps).
enum CVReport {
    static func clipFigures(_ cv: CrossValidationResult) -> String {
        let u = cv.overall.upset
        return String(
            format: """

                Clip figures beside the majority baseline (always "upset": accuracy %.3f, macro F1 %.3f, \
                balanced accuracy 0.500)
                upset accuracy %.3f  macro F1 %.3f  balanced accuracy %.3f  calm recall %.3f  upset recall %.3f  \
                ROC AUC %.3f

                """, cv.majorityShare, cv.majorityShare / (1 + cv.majorityShare), u.accuracy, u.macroF1,
            u.macroRecall, u.classes[0].recall, u.classes[1].recall, cv.upsetAUC)
    }

    static func calibration(_ cv: CrossValidationResult) -> String {
        var out = String(
            format: "Calibration of the upset probability (Platt: slope %.3f, intercept %.3f), held-out clips\n",
            cv.calibration.slope, cv.calibration.intercept)
        out += "predicted  observed  clips\n"
        for bin in cv.reliability where bin.count > 0 {
            out += String(format: "%9.2f %9.2f %6d\n", bin.predicted, bin.observed, bin.count)
        }
        return out
    }

    static func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }

    static func callHeader(calls: Int, what: String) -> String {
        var out = "\nSimulated calls \(what) (\(calls) calls: calm-upset-calm, calm, upset, calm-long-upset-calm; "
        out += "phone channel with loss)\n"
        out += "policy                            calm shown  caught    median     p90  calm calls  false esc  "
        out += "stretch   upset calls\n"
        out += "                                     upset   stretches  onset->   state   flagged    per calm h  "
        return out + "escalations  caught"
    }

    static func json(_ f: CallFigures) -> [String: Any] {
        [
            "calls": f.calls, "calm_speech_s": f.calmSpeechSeconds, "calm_shown_upset": f.calmShownUpsetShare,
            "upset_stretches": f.upsetStretches, "stretches_caught": f.stretchesCaught,
            "median_latency_s": f.medianLatency ?? NSNull(), "upset_calls": f.upsetCalls,
            "upset_calls_caught": f.upsetCallsCaught, "p90_latency_s": f.p90Latency ?? NSNull(),
            "calm_calls": f.calmCalls, "calm_calls_flagged": f.calmCallsFlagged,
            "false_escalations": f.falseEscalations, "false_escalations_per_calm_hour": f.falseEscalationsPerCalmHour,
            "stretch_escalations": f.stretchEscalations, "upset_speech_shown_upset": f.upsetShownUpsetShare,
            "state_changes": f.stateChanges, "median_escalation_s": f.medianEscalationLatency ?? NSNull(),
        ]
    }

    static func callRow(_ name: String, _ f: CallFigures) -> String {
        name.padding(toLength: 34, withPad: " ", startingAt: 0)
            + String(format: "%6.1f %% %5d/%-4d", f.calmShownUpsetShare * 100, f.stretchesCaught, f.upsetStretches)
            + pad(f.medianLatency.map { String(format: "%.0f s", $0) } ?? "-", 8)
            + pad(f.p90Latency.map { String(format: "%.0f s", $0) } ?? "-", 8)
            + String(
                format: " %5d/%-4d %8.2f %6d %6d/%-4d", f.calmCallsFlagged, f.calmCalls,
                f.falseEscalationsPerCalmHour, f.stretchEscalations, f.upsetCallsCaught, f.upsetCalls)
            + "\n" + String(repeating: " ", count: 34)
            + String(
                format: "upset speech shown upset %.1f %%, %d state changes in %d calls", f.upsetShownUpsetShare * 100,
                f.stateChanges, f.calls)
            + (f.medianEscalationLatency.map {
                String(format: ", stretches escalated a median %.0f s after their onset", $0)
            } ?? "")
    }

    static func calls(_ r: CallResults) -> String {
        var out = callHeader(calls: r.calls, what: "from held-out speakers") + "\n"
        out += callRow("fixed 0.6/0.4, uncalibrated (v1)", r.untuned) + "\n"
        out += callRow("chosen on the other folds", r.heldOut) + "\n"
        out += callRow("chosen on all folds (shipped)", r.chosenFigures) + "\n"
        out += String(
            format: "shipped policy: smoothing %.2f, enter upset at %.3f for %d window(s), back to calm below %.3f",
            r.chosen.smoothing, r.chosen.enterUpset, r.chosen.enterWindows, r.chosen.exitUpset)
        out += r.chosen.escalateUpset.map { String(format: ", escalation counts upset speech at %.3f", $0) } ?? ""
        out += r.chosen.escalateUpsetSeconds.map { String(format: ", escalates after %.0f s of it", $0) } ?? ""
        out += r.chosen.escalateWithinSeconds.map { String(format: " within %.0f s", $0) } ?? ""
        out += " (\(r.chosen.chosenFor))\n"
        out += "per-fold choices: "
        out += r.heldOutChoices.map {
            String(format: "%.2f/%.3f/%d/%.3f", $0.smoothing, $0.enterUpset, $0.enterWindows, $0.exitUpset)
                + ($0.escalateUpset.map { String(format: "/esc %.3f", $0) } ?? "")
                + ($0.escalateUpsetSeconds.map { String(format: "/%.0fs", $0) } ?? "")
                + ($0.escalateWithinSeconds.map { String(format: " in %.0fs", $0) } ?? "")
        }
        .joined(separator: ", ")
        return out + "\n"
    }

    static func outOfFoldCSV(_ cv: CrossValidationResult) -> String {
        var out = "entry,variant," + Emotion.allCases.map { "p_\($0.rawValue)" }.joined(separator: ",")
        out += ",p_upset_head\n"
        for (entry, variant, s) in cv.outOfFold {
            out += "\(entry),\(variant)," + s.probabilities.map { String(format: "%.6f", $0) }.joined(separator: ",")
            out += String(format: ",%.6f\n", s.upsetFromHead)
        }
        return out
    }
}
