import EmotionCore
import Foundation

/// Precision, recall, F1 and support per class, as scikit-learn's classification_report computes them.
public struct ClassificationReport: Sendable, Equatable {
    public struct ClassRow: Sendable, Equatable {
        public var name: String
        public var precision: Double
        public var recall: Double
        public var f1: Double
        public var support: Int
    }

    public var classes: [ClassRow]
    /// confusion[true][predicted]
    public var confusion: [[Int]]
    public var accuracy: Double
    /// Predictions that were right (accuracy's numerator).
    public var correct: Int
    public var macroF1: Double
    public var macroPrecision: Double
    public var macroRecall: Double
    public var weightedPrecision: Double
    public var weightedRecall: Double
    public var weightedF1: Double
    public var total: Int

    /// Classes with no support and no predictions still appear, with zeros (sklearn's zero_division=0),
    /// but only classes with support or predictions count in the macro average.
    public init(names: [String], truth: [Int], predicted: [Int]) {
        precondition(truth.count == predicted.count)
        let k = names.count
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        for (t, p) in zip(truth, predicted) { confusion[t][p] += 1 }
        self.confusion = confusion
        total = truth.count
        var rows: [ClassRow] = []
        for c in 0..<k {
            let tp = Double(confusion[c][c])
            let support = confusion[c].reduce(0, +)
            let predictedCount = (0..<k).reduce(0) { $0 + confusion[$1][c] }
            let precision = predictedCount > 0 ? tp / Double(predictedCount) : 0
            let recall = support > 0 ? tp / Double(support) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            rows.append(ClassRow(name: names[c], precision: precision, recall: recall, f1: f1, support: support))
        }
        classes = rows
        let present = (0..<k).filter { c in rows[c].support > 0 || (0..<k).contains { t in confusion[t][c] > 0 } }
        let n = Double(max(1, present.count))
        macroPrecision = present.reduce(0) { $0 + rows[$1].precision } / n
        macroRecall = present.reduce(0) { $0 + rows[$1].recall } / n
        macroF1 = present.reduce(0) { $0 + rows[$1].f1 } / n
        let totalSupport = Double(max(1, total))
        weightedPrecision = rows.reduce(0) { $0 + $1.precision * Double($1.support) } / totalSupport
        weightedRecall = rows.reduce(0) { $0 + $1.recall * Double($1.support) } / totalSupport
        weightedF1 = rows.reduce(0) { $0 + $1.f1 * Double($1.support) } / totalSupport
        correct = (0..<k).reduce(0) { $0 + confusion[$1][$1] }
        accuracy = Double(correct) / totalSupport
    }

    /// The familiar text table, then the confusion matrix (rows = truth, columns = predicted).
    public func formatted(title: String) -> String {
        let width = max(12, (classes.map(\.name.count).max() ?? 0) + 2)
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        func num(_ v: Double) -> String { String(format: "%.3f", v) }
        var out = "\(title)\n"
        out +=
            pad("", width) + pad("precision", 11) + pad("recall", 9) + pad("f1-score", 10) + pad("support", 9) + "\n\n"
        for r in classes {
            out +=
                pad(r.name, width) + pad(num(r.precision), 11) + pad(num(r.recall), 9) + pad(num(r.f1), 10)
                + pad("\(r.support)", 9) + "\n"
        }
        out += "\n"
        out += pad("accuracy", width) + pad("", 11) + pad("", 9) + pad(num(accuracy), 10) + pad("\(total)", 9) + "\n"
        out +=
            pad("macro avg", width) + pad(num(macroPrecision), 11) + pad(num(macroRecall), 9) + pad(num(macroF1), 10)
            + pad("\(total)", 9) + "\n"
        out +=
            pad("weighted avg", width) + pad(num(weightedPrecision), 11) + pad(num(weightedRecall), 9)
            + pad(num(weightedF1), 10) + pad("\(total)", 9) + "\n\n"
        let cell = max(7, (classes.map(\.name.count).max() ?? 0) + 1)
        out += "confusion matrix (rows: true, columns: predicted)\n"
        out += pad("", width) + classes.map { pad(String($0.name.prefix(cell - 1)), cell) }.joined() + "\n"
        for (i, r) in classes.enumerated() {
            out += pad(r.name, width) + confusion[i].map { pad("\($0)", cell) }.joined() + "\n"
        }
        return out
    }
}

/// Both reports for one set of clip predictions.
public struct EvaluationResult: Sendable {
    public var emotion: ClassificationReport
    public var upset: ClassificationReport

    public init(truth: [Emotion], predicted: [Emotion], predictedUpset: [Bool]) {
        emotion = ClassificationReport(
            names: Emotion.allCases.map(\.rawValue), truth: truth.map(\.index), predicted: predicted.map(\.index))
        upset = ClassificationReport(
            names: ["not_upset", "upset"], truth: truth.map { $0.isUpset ? 1 : 0 },
            predicted: predictedUpset.map { $0 ? 1 : 0 })
    }

    public var summary: EmotionModel.MetricsSummary {
        .init(
            clips: emotion.total, upsetAccuracy: upset.accuracy, upsetMacroF1: upset.macroF1,
            emotionAccuracy: emotion.accuracy, emotionMacroF1: emotion.macroF1)
    }

    /// The `eval --json` object.
    public func json(clips: Int, skipped: Int) -> [String: Any] {
        let u = upset.classes[1]
        var perClass: [String: Any] = [:]
        for r in emotion.classes {
            perClass[r.name] = ["precision": r.precision, "recall": r.recall, "f1": r.f1, "support": r.support]
        }
        return [
            "clips": clips, "skipped": skipped,
            "binary": [
                "accuracy": upset.accuracy, "macro_f1": upset.macroF1,
                "upset": ["precision": u.precision, "recall": u.recall, "f1": u.f1],
            ],
            "multiclass": ["accuracy": emotion.accuracy, "macro_f1": emotion.macroF1, "per_class": perClass],
        ]
    }
}
