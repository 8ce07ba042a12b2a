import EmotionTestSupport
import Foundation
import Testing

@Suite("fuzz corpus")
struct FuzzCorpusTests {
    @Test("every committed fuzz input (seeds and any crash found) replays through the harness without a crash")
    func replay() throws {
        let corpus = Repo.root.appendingPathComponent("Tests/FuzzCorpus")
        let count = try FileManager.default.contentsOfDirectory(atPath: corpus.path).count
        #expect(count >= 5)
        let result = try run(Repo.product("EmotionTapFuzz"), [corpus.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("replayed \(count) inputs"))
    }
}
