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
        let runner = Repo.executable.deletingLastPathComponent().appendingPathComponent("EmotionTapFuzz")
        let p = Process()
        p.executableURL = runner
        p.arguments = [corpus.path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(text.contains("replayed \(count) inputs"))
    }
}
