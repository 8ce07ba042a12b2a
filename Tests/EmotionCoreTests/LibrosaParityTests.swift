@testable import EmotionCore
import EmotionTestSupport
import Foundation
import Testing

@Suite("librosa parity")
struct LibrosaParityTests {
    @Test("three clips, two parameter sets")
    func goldenFilesCoverTheContract() throws {
        let names = try Golden.all()
        #expect(Set(names.map { $0.components(separatedBy: "__")[0] }).count >= 3)
        #expect(Set(names.map { $0.components(separatedBy: "__")[1] }).count >= 2)
    }

    @Test("features match librosa 0.11 within tolerance", arguments: try Golden.all())
    func matchesLibrosa(goldenName: String) throws {
        let golden = try Golden.load(goldenName)
        let audio = try Fixtures.audio(golden.clip)
        let extractor = try FrameFeatureExtractor(config: golden.config)
        let rows = extractor.extractAll(audio.samples)
        try #require(rows.count == golden.frames.count, "frame count \(rows.count) vs librosa \(golden.frames.count)")

        func relativeOK(_ ours: Float, _ theirs: Double) -> Bool {
            let diff = abs(Double(ours) - theirs)
            return diff <= 1e-6 || diff <= 1e-3 * abs(theirs)
        }
        var worstMFCC = 0.0, worstChroma = 0.0
        for (i, (row, frame)) in zip(rows, golden.frames).enumerated() {
            #expect(abs(Double(i) * golden.config.frameStep - frame.t) < 1e-6)
            #expect(
                relativeOK(row[FrameLayout.rms], frame.rms), "rms frame \(i): \(row[FrameLayout.rms]) vs \(frame.rms)")
            #expect(
                relativeOK(row[FrameLayout.zcr], frame.zcr), "zcr frame \(i): \(row[FrameLayout.zcr]) vs \(frame.zcr)")
            #expect(relativeOK(row[FrameLayout.centroid], frame.centroid), "centroid frame \(i)")
            for (k, expected) in frame.mfcc.enumerated() {
                worstMFCC = max(worstMFCC, abs(Double(row[FrameLayout.mfcc.lowerBound + k]) - expected))
            }
            for (k, expected) in frame.chroma.enumerated() {
                worstChroma = max(worstChroma, abs(Double(row[FrameLayout.chroma.lowerBound + k]) - expected))
            }
        }
        #expect(worstMFCC <= 0.05, "worst MFCC difference \(worstMFCC)")
        #expect(worstChroma <= 1e-3, "worst chroma difference \(worstChroma)")
    }

    @Test("frame times and count follow librosa's center=True framing")
    func frameCount() throws {
        let extractor = try FrameFeatureExtractor()
        for n in [1, 159, 160, 161, 8000] {
            let rows = extractor.extractAll([Float](repeating: 0.1, count: n))
            #expect(rows.count == 1 + n / 160)
        }
        #expect(extractor.extractAll([]).isEmpty)
    }

    @Test("digital silence gives zero centroid and chroma, floor MFCC, no NaN")
    func silence() throws {
        let rows = try FrameFeatureExtractor().extractAll([Float](repeating: 0, count: 1600))
        for row in rows {
            #expect(row.allSatisfy { $0.isFinite })
            #expect(row[FrameLayout.centroid] == 0)
            #expect(row[FrameLayout.chroma].allSatisfy { $0 == 0 })
            #expect(abs(row[FrameLayout.mfcc.lowerBound] - (-100 * Float(40).squareRoot())) < 0.01)
        }
    }
}
