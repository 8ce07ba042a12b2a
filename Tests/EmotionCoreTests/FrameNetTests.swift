import EmotionCore
import EmotionTestSupport
import Foundation
import Testing

/// The frame network against the golden vectors `training/frame_model.py golden` wrote with PyTorch: the
/// same frames in, the same inputs built, the same verdict on every window of the stream.
@Suite("Frame network")
struct FrameNetTests {
    struct Golden: Decodable {
        struct Window: Decodable {
            var start: Int
            var end: Int
            var probabilities: [Float]
            var upsetHead: Float
        }
        var clips: [String]
        var clipFrames: [Int]
        var frameColumns: [String]
        var frames: PackedFloats
        var inputs: PackedFloats
        var windows: [Window]
        var net: FrameNet
        /// A `--mel` network's golden: the frames' mel bands (dB, `melPrior.count` a frame).
        var melBands: PackedFloats?
    }

    static func golden(_ name: String = "frame-net") throws -> Golden {
        let data = try Data(contentsOf: Fixtures.goldens.appendingPathComponent("frame-network/\(name).json"))
        return try JSONDecoder().decode(Golden.self, from: data)
    }

    /// Frame `t`'s mel bands of a mel golden, nil for a frame the gate turned down (its bands are zero there).
    static func bands(_ g: Golden, _ t: Int, _ body: (UnsafeBufferPointer<Float>?) -> Void) {
        guard let mel = g.melBands?.values, let n = g.net.melPrior?.count else { return body(nil) }
        let speech = g.frames.values[t * g.frameColumns.count + g.frameColumns.count - 1] > 0.5
        if g.net.gatedFrames == true, !speech { return body(nil) }
        mel.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[(t * n)..<(t * n + n)])) }
    }

    @Test("a network that also reads the mel bands: inputs and every window's verdict as PyTorch computed them")
    func melNetwork() throws {
        let g = try Self.golden("frame-net-mel")
        let bandCount = try #require(g.net.melPrior?.count)
        #expect(bandCount == FeatureConfig().nMels && g.net.inputs.count == FrameNetInputs.count + bandCount)
        #expect(g.net.problem(windowFrames: 150, melBands: bandCount) == nil)
        #expect(g.net.problem(windowFrames: 150, melBands: 64)?.contains("mel bands") == true)
        let width = g.frameColumns.count, n = g.net.inputs.count, frames = g.frames.values
        let count = frames.count / width
        #expect(g.inputs.values.count == count * n && g.melBands?.values.count == count * bandCount)
        var builder = FrameNetInputs(
            mean: g.net.inputMean.values, scale: g.net.inputScale.values, pitchPrior: g.net.pitchPrior,
            channelPrior: g.net.channelPrior, melPrior: g.net.melPrior ?? [])
        #expect(builder.width == n)
        let stream = FrameNetStream(net: g.net)
        var out = [Float](repeating: 0, count: n), probabilities = [Float](repeating: 0, count: Emotion.allCases.count)
        var worstInput: Float = 0, worstOutput: Float = 0, next = 0
        for t in 0..<count {
            let speech = frames[t * width + width - 1] > 0.5
            frames.withUnsafeBufferPointer { f in
                let row = UnsafeBufferPointer(rebasing: f[(t * width)..<(t * width + FrameLayout.count)])
                Self.bands(g, t) { bands in
                    builder.build(frame: row, melBandsDB: bands, speech: speech, into: &out)
                    stream.push(frame: row, melBandsDB: bands, speech: speech)
                }
            }
            for i in 0..<n { worstInput = max(worstInput, abs(out[i] - g.inputs.values[t * n + i])) }
            while next < g.windows.count, g.windows[next].end == t + 1 {
                let w = g.windows[next]
                let head = try #require(
                    stream.score(startFrame: w.start, endFrame: w.end, probabilities: &probabilities))
                worstOutput = max(worstOutput, abs(head - w.upsetHead))
                for i in probabilities.indices {
                    worstOutput = max(worstOutput, abs(probabilities[i] - w.probabilities[i]))
                }
                next += 1
            }
        }
        #expect(worstInput < 2e-4, "largest input difference \(worstInput)")
        #expect(
            next == g.windows.count && worstOutput < 1e-4, "\(next) windows, largest output difference \(worstOutput)")
        // Without its bands the network's verdicts move: the bands are really read.
        let blind = FrameNetStream(net: g.net)
        for t in 0..<count {
            frames.withUnsafeBufferPointer { f in
                blind.push(
                    frame: UnsafeBufferPointer(rebasing: f[(t * width)..<(t * width + FrameLayout.count)]),
                    speech: f[t * width + width - 1] > 0.5)
            }
        }
        let last = g.windows[g.windows.count - 1]
        _ = try #require(blind.score(startFrame: last.start, endFrame: last.end, probabilities: &probabilities))
        #expect(
            abs(probabilities[0] - last.probabilities[0]) > 1e-3 || abs(probabilities[4] - last.probabilities[4]) > 1e-3
        )
    }

    @Test("the live analyser hands a frame network the mel bands the exporter wrote, and none for a gated-out frame")
    func analyserMelBands() throws {
        let g = try Self.golden("frame-net-mel")
        let bandCount = try #require(g.net.melPrior?.count)
        let audio = try Fixtures.audio("crema-" + g.clips[0] + ".wav")
        let analyzer = try StreamingAnalyzer(analyseEveryFrame: g.net.gatedFrames != true)
        var seen: [Float] = [], missing = 0, frames = 0
        analyzer.onFrame = { frame, speech in
            frames += 1
            if let bands = frame.melBandsDB {
                seen.append(contentsOf: bands)
            } else {
                #expect(!speech, "a speech frame is fully analysed")
                missing += 1
                seen.append(contentsOf: [Float](repeating: 0, count: bandCount))
            }
        }
        analyzer.push(audio.samples) { _ in }
        analyzer.finish { _ in }
        #expect(frames == g.clipFrames[0] && missing > 0)
        let expected = Array(try #require(g.melBands).values[0..<(g.clipFrames[0] * bandCount)])
        var worst: Float = 0
        for i in 0..<min(seen.count, expected.count) { worst = max(worst, abs(seen[i] - expected[i])) }
        #expect(seen.count == expected.count && worst < 1e-3, "largest band difference \(worst)")
    }

    @Test("inputs built causally match the training script's, frame by frame")
    func inputs() throws {
        let g = try Self.golden()
        #expect(g.frameColumns == FrameLayout.names + ["speech"])
        let width = g.frameColumns.count, n = FrameNetInputs.count
        let frames = g.frames.values, expected = g.inputs.values
        let count = frames.count / width
        #expect(expected.count == count * n)
        var builder = FrameNetInputs(
            mean: g.net.inputMean.values, scale: g.net.inputScale.values, pitchPrior: g.net.pitchPrior,
            channelPrior: g.net.channelPrior)
        var out = [Float](repeating: 0, count: n)
        var worst: Float = 0
        for t in 0..<count {
            frames.withUnsafeBufferPointer { f in
                let row = UnsafeBufferPointer(rebasing: f[(t * width)..<(t * width + FrameLayout.count)])
                builder.build(frame: row, speech: f[t * width + width - 1] > 0.5, into: &out)
            }
            for i in 0..<n { worst = max(worst, abs(out[i] - expected[t * n + i])) }
        }
        #expect(worst < 2e-4, "largest input difference \(worst)")
    }

    @Test("every window's verdict streams out as PyTorch computed it, and again after a reset")
    func windows() throws {
        let g = try Self.golden()
        #expect(g.net.problem(windowFrames: 150) == nil)
        #expect(g.windows.count >= 4, "the golden stream should hold several overlapping windows")
        let stream = FrameNetStream(net: g.net)
        let width = g.frameColumns.count
        let frames = g.frames.values
        var probabilities = [Float](repeating: 0, count: Emotion.allCases.count)
        for pass in 0..<2 {
            stream.reset()
            var next = 0, worst: Float = 0
            for t in 0..<(frames.count / width) {
                frames.withUnsafeBufferPointer { f in
                    let row = UnsafeBufferPointer(rebasing: f[(t * width)..<(t * width + FrameLayout.count)])
                    stream.push(frame: row, speech: f[t * width + width - 1] > 0.5)
                }
                while next < g.windows.count, g.windows[next].end == t + 1 {
                    let w = g.windows[next]
                    let head = try #require(
                        stream.score(startFrame: w.start, endFrame: w.end, probabilities: &probabilities))
                    worst = max(worst, abs(head - w.upsetHead))
                    for i in probabilities.indices { worst = max(worst, abs(probabilities[i] - w.probabilities[i])) }
                    next += 1
                }
            }
            #expect(next == g.windows.count, "pass \(pass): scored \(next) of \(g.windows.count) windows")
            #expect(worst < 1e-4, "pass \(pass): largest output difference \(worst)")
        }
    }

    @Test("legs batched into one GEMM per block get each the verdicts they get alone")
    func batched() throws {
        let g = try Self.golden()
        let width = g.frameColumns.count, frames = g.frames.values, count = frames.count / width
        // Three legs at different points of the same stream, brought up to date together every 5 frames.
        let offsets = [0, 17, 60]
        let streams = offsets.map { _ in FrameNetStream(net: g.net) }
        let batch = FrameNetBatch(net: g.net, rows: 40)
        var probabilities = [Float](repeating: 0, count: Emotion.allCases.count)
        var scored = 0, worst: Float = 0
        for step in 0..<(count + offsets.max()!) {
            for (leg, stream) in streams.enumerated() {
                let t = step - offsets[leg]
                guard t >= 0, t < count else { continue }
                frames.withUnsafeBufferPointer { f in
                    stream.push(
                        frame: UnsafeBufferPointer(rebasing: f[(t * width)..<(t * width + FrameLayout.count)]),
                        speech: f[t * width + width - 1] > 0.5)
                }
            }
            if step % 5 == 4 { batch.advance(streams) }
            for (leg, stream) in streams.enumerated() {
                let t = step - offsets[leg]
                for w in g.windows where w.end == t + 1 {
                    let head = try #require(
                        stream.score(startFrame: w.start, endFrame: w.end, probabilities: &probabilities))
                    worst = max(worst, abs(head - w.upsetHead))
                    for i in probabilities.indices { worst = max(worst, abs(probabilities[i] - w.probabilities[i])) }
                    scored += 1
                }
            }
        }
        #expect(scored == 3 * g.windows.count)
        #expect(worst < 1e-4, "largest output difference \(worst)")
    }

    @Test("a window that is no longer held gets no verdict, not a wrong one")
    func staleWindow() throws {
        let g = try Self.golden()
        let stream = FrameNetStream(net: g.net)
        let width = g.frameColumns.count
        let frames = g.frames.values
        for t in 0..<(frames.count / width) {
            frames.withUnsafeBufferPointer { f in
                stream.push(
                    frame: UnsafeBufferPointer(rebasing: f[(t * width)..<(t * width + FrameLayout.count)]),
                    speech: f[t * width + width - 1] > 0.5)
            }
        }
        var p = [Float](repeating: 0, count: Emotion.allCases.count)
        #expect(stream.score(startFrame: 0, endFrame: 150, probabilities: &p) == nil)
        #expect(stream.score(startFrame: 1, endFrame: 151, probabilities: &p) == nil)
        // Longer than the network's window (200 frames, all still held): refused, not pooled past its buffers.
        #expect(frames.count / width == 435)
        #expect(stream.score(startFrame: 284, endFrame: 434, probabilities: &p) != nil)
        #expect(stream.score(startFrame: 234, endFrame: 434, probabilities: &p) == nil)
    }

    @Test("the analyser that feeds a frame network hands it the frames the exporter wrote")
    func analyserFrames() throws {
        let g = try Self.golden()
        let width = g.frameColumns.count
        let name = "crema-" + g.clips[0] + ".wav"
        let audio = try Fixtures.audio(name)
        // A network trained on gated frames (`--gated`) gets the frames as the gate leaves them, as exported.
        let analyzer = try StreamingAnalyzer(analyseEveryFrame: g.net.gatedFrames != true)
        var seen: [Float] = []
        analyzer.onFrame = { frame, speech in
            seen.append(contentsOf: frame.values)
            seen.append(speech ? 1 : 0)
        }
        analyzer.push(audio.samples) { _ in }
        analyzer.finish { _ in }
        #expect(seen.count == g.clipFrames[0] * width)
        let expected = Array(g.frames.values[0..<(g.clipFrames[0] * width)])
        var worst: Float = 0
        for i in 0..<min(seen.count, expected.count) { worst = max(worst, abs(seen[i] - expected[i])) }
        #expect(worst < 1e-3, "largest frame difference \(worst)")
    }

    @Test(
        "a network trained on gated frames gets silent frames with only their level, zero crossings, centroid and flux, and speech frames in full"
    )
    func gatedFrames() throws {
        var model = try Fixtures.modelWithFrameNet()
        model.frameNet?.gatedFrames = false
        #expect(ModelRunner(model: model).analysesEveryFrame)
        model.frameNet?.gatedFrames = true
        let runner = ModelRunner(model: model)
        #expect(runner.readsFrames && !runner.analysesEveryFrame)
        let call = try AudioInput.load(Repo.root.appendingPathComponent("config/samples/sample-call.wav"))
        func frames(_ analyzer: StreamingAnalyzer) -> (values: [[Float]], speech: [Bool]) {
            var values: [[Float]] = [], speech: [Bool] = []
            analyzer.onFrame = { frame, isSpeech in
                values.append(Array(frame.values))
                speech.append(isSpeech)
            }
            _ = analyzer.windows(of: call.samples)
            return (values, speech)
        }
        let full = frames(try StreamingAnalyzer(analyseEveryFrame: true))
        let gated = frames(try StreamingAnalyzer(for: model, feeding: runner))
        #expect(gated.speech == full.speech && gated.values.count == full.values.count)
        let kept = [FrameLayout.rms, FrameLayout.zcr, FrameLayout.centroid, FrameLayout.energyDB, FrameLayout.flux]
        var silent = 0
        for (i, isSpeech) in full.speech.enumerated() {
            if isSpeech {
                #expect(gated.values[i] == full.values[i], "speech frame \(i) analysed in full")
                continue
            }
            silent += 1
            for c in 0..<FrameLayout.count {
                // What training/frame_model.py's gate_frames zeroes (GATED_OUT) is all the rest.
                let expected = kept.contains(c) ? full.values[i][c] : 0
                #expect(gated.values[i][c] == expected, "silent frame \(i), \(FrameLayout.names[c])")
            }
        }
        #expect(silent > 100, "the sample call has pauses")
    }

    @Test("offline as live: a clip predictor scores every window of a long stream with the frame network")
    func offlineAsLive() throws {
        let model = try Fixtures.modelWithFrameNet()
        var samples: [Float] = []
        for name in Fixtures.clips + ["crema-1022_IWW_NEU_XX.wav"] { samples += try Fixtures.audio(name).samples }
        let predictor = try ClipPredictor(model: model)
        let offline = predictor.windows(of: samples).map(\.1)
        #expect(predictor.runner.frameNetMisses == 0)
        // A live leg: a fresh runner, audio in packets of 20 ms, each window scored as it completes.
        let runner = ModelRunner(model: model)
        let analyzer = try StreamingAnalyzer(for: model, feeding: runner)
        var live: [EmotionScores?] = []
        for start in stride(from: 0, to: samples.count, by: 160) {
            analyzer.push(Array(samples[start..<min(samples.count, start + 160)])) {
                live.append(runner.predict(window: $0))
            }
        }
        analyzer.finish { live.append(runner.predict(window: $0)) }
        #expect(offline.count >= 6 && offline == live)
        // The network is in the verdicts: without it they differ.
        var plain = model
        plain.frameNet = nil
        plain.frameNetWeight = nil
        #expect(try ClipPredictor(model: plain).windows(of: samples).map(\.1) != offline)
    }

    @Test("a model with a bad frame network is refused at load with the reason")
    func badNetworkRefused() throws {
        var net = try Self.golden().net
        #expect(net.problem(windowFrames: 100) != nil)
        net.blocks[1].kernel = 5
        #expect(net.problem(windowFrames: 150)?.contains("block 2") == true)
        net = try Self.golden().net
        net.inputs.removeLast()
        #expect(net.problem(windowFrames: 150)?.contains("other inputs") == true)
        // Hostile sizes get a reason, not an overflow trap.
        net = try Self.golden().net
        net.blocks[0].outputs = Int.max / 2
        #expect(net.problem(windowFrames: 150)?.contains("block 1") == true)
        net = try Self.golden().net
        net.hidden.outputs = Int.max / 2
        #expect(net.problem(windowFrames: 150)?.contains("inconsistent") == true)
        // A residual block must keep the frame rate; every value must be finite; the hop must fall on the stride.
        net = try Self.golden().net
        net.blocks[0].residual = true
        net.blocks[0].outputs = net.blocks[0].inputs
        #expect(net.problem(windowFrames: 150)?.contains("block 1") == true)
        net = try Self.golden().net
        net.attentionScore.bias = PackedFloats([.nan])
        #expect(net.problem(windowFrames: 150)?.contains("not finite") == true)
        // A network's inputs and its mel band means go together.
        net = try Self.golden().net
        net.melPrior = [Double](repeating: 0, count: 40)
        #expect(net.problem(windowFrames: 150)?.contains("other inputs") == true)
        net = try Self.golden("frame-net-mel").net
        net.melPrior?[3] = .infinity
        #expect(net.problem(windowFrames: 150)?.contains("not finite") == true)
        net = try Self.golden().net
        #expect(net.problem(windowFrames: 150, hopFrames: 50) == nil)
        #expect(net.problem(windowFrames: 150, hopFrames: 25)?.contains("window hop") == true)
    }
}
