import EmotionTestSupport
import Foundation
import Testing

@Suite("emotiontap eval")
struct CorpusEvalTests {
    @Test(
        "eval on the corpora (skipped without ../shared/corpora)",
        .enabled(if: Fixtures.corpora != nil, "../shared/corpora is absent: corpus evaluation skipped"))
    func corpusEval() throws {
        let corpora = try #require(Fixtures.corpora)
        // A bounded sample: every 25th clip, through the real command.
        let dir = try TemporaryDirectory()
        let lines = try String(contentsOf: corpora.appendingPathComponent("manifest.csv"), encoding: .utf8).split(
            whereSeparator: \.isNewline)
        let sample = [lines[0]] + lines.dropFirst().enumerated().filter { $0.offset % 25 == 0 }.map(\.element)
        let manifest = try dir.write("sample.csv", Array(sample.joined(separator: "\n").utf8))
        let result = try runEmotionTap([
            "eval", "--corpora", corpora.path, "--manifest", manifest.path, "--json", "--calls", "1",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["clips"] as? Int == sample.count - 1)
        let binary = try #require(json["binary"] as? [String: Any])
        // These clips were seen in training, so this checks the plumbing, not generalisation.
        #expect((binary["accuracy"] as? Double ?? 0) > 0.6)
        // Clip figures beside the majority baseline, and call-level figures from the sample's speakers.
        let clip = try #require(json["clip_figures"] as? [String: Any])
        for key in ["balanced_accuracy", "calm_recall", "upset_recall", "roc_auc", "majority_upset_accuracy"] {
            #expect(clip[key] is Double, "\(key)")
        }
        #expect((clip["roc_auc"] as? Double ?? 0) > 0.6)
        let calls = try #require(json["calls"] as? [String: Any])
        #expect((calls["calls"] as? Int ?? 0) >= 3, "\(calls)")
        #expect((calls["upset_stretches"] as? Int ?? 0) >= 2, "\(calls)")
        let shown = try #require(calls["calm_shown_upset"] as? Double)
        #expect(shown >= 0 && shown <= 1)
    }
}
