import EmotionTestSupport
import Foundation
import Testing
@testable import EmotionCore

@Suite("streaming equals batch")
struct StreamingTests {
    @Test("random chunk sizes give the same frames as one whole-file pass", arguments: [1, 2, 3, 4, 5])
    func framesIndependentOfChunking(seed: UInt64) throws {
        let audio = try Fixtures.audio(Fixtures.clips[Int(seed) % Fixtures.clips.count])
        let config = seed % 2 == 0 ? FeatureConfig() : FeatureConfig(nFFT: 256, winLength: 200, hopLength: 80)
        let extractor = try FrameFeatureExtractor(config: config)
        let batch = extractor.extractAll(audio.samples)

        var rng = SeededGenerator(seed: seed)
        extractor.reset()
        var streamed: [[Float]] = []
        var offset = 0
        while offset < audio.samples.count {
            // 1 sample up to 60 ms, and now and then a chunk larger than the internal buffer.
            let size =
                Int.random(in: 0..<10, using: &rng) == 0
                ? Int.random(in: 1000...3000, using: &rng)
                : Int.random(in: 1...480, using: &rng)
            let end = min(offset + size, audio.samples.count)
            extractor.push(Array(audio.samples[offset..<end])) { streamed.append(Array($0.values)) }
            offset = end
        }
        extractor.finish { streamed.append(Array($0.values)) }
        #expect(streamed.count == batch.count)
        #expect(streamed == batch, "streamed frames must be bit-identical to the batch pass")
    }

    @Test("windows are independent of chunking too")
    func windowsIndependentOfChunking() throws {
        let call = try AudioInput.load(
            URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
                    "config/samples/sample-call.wav"))
        let analyzer = try StreamingAnalyzer()
        let batch = analyzer.windows(of: call.samples)
        #expect(batch.count >= 20)
        analyzer.reset()
        var streamed: [WindowFeatures] = []
        var rng = SeededGenerator(seed: 42)
        var offset = 0
        while offset < call.samples.count {
            let end = min(offset + Int.random(in: 80...960, using: &rng), call.samples.count)
            analyzer.push(Array(call.samples[offset..<end])) { streamed.append($0) }
            offset = end
        }
        analyzer.finish { streamed.append($0) }
        #expect(streamed.map(\.start) == batch.map(\.start))
        #expect(streamed.map(\.vector) == batch.map(\.vector))
    }

    @Test("silent frames skip most of their analysis, and the windows come out the same bit for bit")
    func skippedSilenceLeavesWindowsUnchanged() throws {
        let call = try AudioInput.load(
            URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
                    "config/samples/sample-call.wav"))
        // Every frame analysed in full (as librosa does), then windowed.
        let extractor = try FrameFeatureExtractor()
        let aggregator = try WindowAggregator(frameStep: extractor.config.frameStep)
        var full: [WindowFeatures] = []
        var framesSeen = 0
        extractor.push(call.samples) { frame in
            framesSeen += 1; if let w = aggregator.add(frame) { full.append(w) }
        }
        extractor.finish { frame in
            framesSeen += 1; if let w = aggregator.add(frame) { full.append(w) }
        }
        if let w = aggregator.finish() { full.append(w) }
        // The analyzer lets the speech gate turn silent frames' analysis down.
        let gated = try StreamingAnalyzer().windows(of: call.samples)
        #expect(gated.count == full.count)
        #expect(gated.map(\.vector) == full.map(\.vector))
        #expect(gated.map(\.speechFraction) == full.map(\.speechFraction))
        // The call has pauses, so some frames really were skipped.
        #expect(full.contains { $0.speechFraction < 0.9 })
    }

    @Test("percentiles by selection equal percentiles of a sorted copy", arguments: [1, 2, 3, 7, 17, 18, 100, 301])
    func selectionMatchesSort(count: Int) {
        var rng = SeededGenerator(seed: UInt64(count))
        for round in 0..<20 {
            // Ties on purpose in half the rounds.
            var values = (0..<count).map { _ in
                round.isMultiple(of: 2)
                    ? Float.random(in: -50...50, using: &rng)
                    : Float(Int.random(in: 0...5, using: &rng))
            }
            // Columns that come in order (a level rising through the window), and all equal.
            if round == 16 { values.sort() }
            if round == 17 { values.sort(by: >) }
            if round == 19 { values = values.map { _ in 3 } }
            let sorted = values.sorted()
            var from = 0
            for q in [0.1, 0.5, 0.9] {
                let rank = Int((q * Double(count - 1)).rounded(.down))
                values.withUnsafeMutableBufferPointer { WindowVector.select($0, rank: rank, from: from) }
                #expect(values[rank] == sorted[rank])
                #expect(values[..<rank].allSatisfy { $0 <= values[rank] })
                #expect(values[rank...].allSatisfy { $0 >= values[rank] })
                from = rank
            }
        }
    }

    @Test("windows: 3 s every 1 s, silence gives no verdict, short clips get one window")
    func windowing() throws {
        let analyzer = try StreamingAnalyzer()
        // 10 s: 4 s of digital silence, then 6 s of a voiced harmonic signal.
        var samples = [Float](repeating: 0, count: 32000)
        for n in 0..<48000 {
            let t = Float(n) / 8000
            samples.append(0.2 * sin(2 * .pi * 150 * t) + 0.1 * sin(2 * .pi * 300 * t) + 0.05 * sin(2 * .pi * 450 * t))
        }
        let windows = analyzer.windows(of: samples)
        #expect(windows.map(\.end) == [3, 4, 5, 6, 7, 8, 9, 10])
        #expect(windows.first?.vector == nil, "a silent window has no verdict")
        #expect(windows.first?.speechFraction == 0)
        let last = try #require(windows.last)
        #expect(last.speechFraction > 0.9)
        let vector = try #require(last.vector)
        #expect(vector.count == WindowVector.count)
        #expect(vector.allSatisfy { $0.isFinite })
        // Pitch of 150 Hz is 7.02 semitones above 100 Hz.
        let pitchIndex = try #require(WindowVector.names.firstIndex(of: "pitch_st_p50"))
        #expect(abs(vector[pitchIndex] - 12 * log2(1.5)) < 0.3)

        let short = try Fixtures.audio(Fixtures.clips[0])
        let shortWindows = analyzer.windows(of: short.samples)
        #expect(shortWindows.count == 1)
        #expect(shortWindows[0].vector != nil)
    }

    @Test("a clip 20 dB quieter gives nearly the same window vector")
    func gainInvariance() throws {
        let analyzer = try StreamingAnalyzer()
        // Scale of each entry: its spread over the windows of the bundled sample call.
        let call = try AudioInput.load(
            URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
                    "config/samples/sample-call.wav"))
        let reference = analyzer.windows(of: call.samples).compactMap(\.vector)
        let scale = (0..<WindowVector.count).map { i -> Float in
            let values = reference.map { $0[i] }
            let mean = values.reduce(0, +) / Float(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(values.count)
            return max(variance.squareRoot(), 1e-3)
        }
        for clip in Fixtures.clips {
            let audio = try Fixtures.audio(clip)
            let loud = try #require(analyzer.windows(of: audio.samples).first?.vector)
            let quiet = try #require(analyzer.windows(of: audio.samples.map { $0 * 0.1 }).first?.vector)
            let z = zip(zip(loud, quiet), scale).map { abs($0.0 - $0.1) / $1 }
            let worst = z.indices.max { z[$0] < z[$1] }!
            // An onset frame next to the codec's noise floor can flip in or out of the speech gate,
            // which moves spread statistics of one window a little; nothing may move far.
            #expect(z[worst] < 1.5, "\(clip): \(WindowVector.names[worst]) moved \(z[worst]) standard deviations")
            #expect(
                z.reduce(0, +) / Float(z.count) < 0.15, "\(clip): mean change \(z.reduce(0, +) / Float(z.count)) sd")
        }
    }
}
