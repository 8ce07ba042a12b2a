// Throughput benchmarks for the streaming feature extractor and the payload decoders.
//
// Besides the standard metrics every benchmark reports a custom metric "x real time":
// seconds of audio processed per second of wall clock, measured inside the benchmark
// body for each iteration (its p50 is the realtime factor at the median). It can be
// cross-checked from the standard columns:
//   features:  x real time = 10 s / (wall clock per iteration)  = throughput (#/s) * 10
//   codecs:    x real time = 20 ms / (wall clock per packet)    = throughput (#/s) / 50
// (the codec benchmarks are scaled, so their wall clock and throughput are per packet).

import Benchmark
import EmotionCore
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// MARK: - Test signal

/// SplitMix64: tiny, fixed-seed, platform-independent.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    mutating func nextSigned() -> Double {
        Double(next() >> 11) / Double(1 << 52) - 1
    }
}

/// Deterministic speech-like signal: a glottal-ish harmonic series (f0 ~ 120-160 Hz with
/// 5 Hz vibrato and a slow intonation drift), syllable-rate (4 Hz) amplitude envelope with
/// short pauses, spectral tilt, plus low-level white noise from a fixed seed.
func synthesizeSpeechLike(seconds: Double, sampleRate: Int, seed: UInt64 = 0x5EED) -> [Float] {
    let n = Int(seconds * Double(sampleRate))
    let sr = Double(sampleRate)
    var rng = SplitMix64(state: seed)
    var out = [Float](repeating: 0, count: n)
    var phase = 0.0
    let nyquist = sr / 2
    for i in 0..<n {
        let t = Double(i) / sr
        let f0 = 140 + 15 * sin(2 * .pi * 0.3 * t) + 8 * sin(2 * .pi * 5 * t)
        phase += 2 * .pi * f0 / sr
        if phase > 2 * .pi * 1000 { phase -= 2 * .pi * 1000 }
        var voiced = 0.0
        var k = 1
        while Double(k) * f0 < nyquist * 0.95 {
            voiced += sin(Double(k) * phase) / Double(k)  // ~ -6 dB/octave tilt
            k += 1
        }
        // syllables: raised-cosine bursts at 4 Hz, every 5th one silent (a pause)
        let syllable = Int(t * 4)
        let env = syllable % 5 == 4 ? 0 : 0.5 - 0.5 * cos(2 * .pi * 4 * t)
        let noise = 0.01 * rng.nextSigned()
        out[i] = Float(0.25 * env * voiced + noise)
    }
    return out
}

func toInt16(_ x: [Float]) -> [Int16] {
    x.map { Int16(max(-32768, min(32767, ($0 * 32767).rounded()))) }
}

@inline(__always)
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Custom metric: seconds of audio per second of wall clock (bigger is better, not scaled).
let realTime = BenchmarkMetric.custom("x real time", polarity: .prefersLarger, useScalingFactor: false)

let commonMetrics: [BenchmarkMetric] = [.wallClock, .cpuTotal, .mallocCountTotal, .throughput, realTime]

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: commonMetrics,
        units: [realTime: .count],  // print "x real time" as a plain factor, not in K
        warmupIterations: 3,
        maxDuration: .seconds(4),
        maxIterations: 10_000
    )

    // Feature extraction: 10 s of audio per iteration, streamed in 160-sample (20 ms) chunks.
    func featureBenchmark(_ name: String, config: FeatureConfig) {
        let audioSeconds = 10.0
        let chunk = 160
        let signal = synthesizeSpeechLike(seconds: audioSeconds, sampleRate: config.sampleRate)
        let extractor = try! FrameFeatureExtractor(config: config)
        let expectedFrames = extractor.frameCount(forSamples: signal.count)
        let audioNanos = audioSeconds * 1e9

        Benchmark(name, configuration: .init(timeUnits: .microseconds)) { benchmark in
            let start = monotonicNanos()
            var frames = 0
            var acc: Float = 0
            extractor.reset()
            signal.withUnsafeBufferPointer { all in
                var offset = 0
                while offset < all.count {
                    let end = min(offset + chunk, all.count)
                    extractor.push(UnsafeBufferPointer(rebasing: all[offset..<end])) { frame in
                        frames += 1
                        acc += frame.values[FrameLayout.rms]
                    }
                    offset = end
                }
            }
            extractor.finish { frame in
                frames += 1
                acc += frame.values[FrameLayout.rms]
            }
            blackHole(acc)
            let elapsed = monotonicNanos() - start
            benchmark.stopMeasurement()  // keep the bookkeeping below out of the measured region
            benchmark.measurement(realTime, Int((audioNanos / Double(max(elapsed, 1))).rounded()))
            if frames != expectedFrames {
                benchmark.error("expected \(expectedFrames) frames, got \(frames)")
            }
        }
    }

    featureBenchmark("Features 8kHz default (10 s of audio)", config: FeatureConfig())
    featureBenchmark(
        "Features 8kHz nfft256 win200 hop80 (10 s of audio)",
        config: FeatureConfig(nFFT: 256, winLength: 200, hopLength: 80)
    )

    // 20 ms packets at 8 kHz: 160 samples.
    let packetSamples = 160
    let packetNanos = 20e6
    let pcm = toInt16(synthesizeSpeechLike(seconds: 1, sampleRate: 8000))

    // G.711 mu-law: one 160-byte packet per scaled iteration (1000 per measured iteration).
    do {
        let payload = pcm[0..<packetSamples].map { G711Law.muLaw.encode($0) }
        let decoder = G711Decoder(law: .muLaw)
        var output = [Int16](repeating: 0, count: packetSamples)
        let decodedCount = payload.withUnsafeBytes { raw in
            output.withUnsafeMutableBufferPointer { out in try! decoder.decode(raw, into: out) }
        }
        precondition(decodedCount == packetSamples, "G.711 packet decoded to \(decodedCount) samples")
        Benchmark(
            "G.711 decode 20 ms packet",
            configuration: .init(scalingFactor: .kilo)
        ) { benchmark in
            let start = monotonicNanos()
            payload.withUnsafeBytes { raw in
                output.withUnsafeMutableBufferPointer { out in
                    for _ in benchmark.scaledIterations {
                        blackHole(try! decoder.decode(raw, into: out))
                    }
                }
            }
            blackHole(output[0])
            let elapsed = monotonicNanos() - start
            benchmark.stopMeasurement()  // keep the bookkeeping below out of the measured region
            let packets = Double(benchmark.scaledIterations.count)
            benchmark.measurement(realTime, Int((packets * packetNanos / Double(max(elapsed, 1))).rounded()))
        }
    }

    // Opus at 8 kHz, 12 kbit/s VoIP: 50 packets (1 s) encoded once, decoded round-robin.
    do {
        let encoder = try! OpusPayloadEncoder(sampleRate: 8000)
        precondition(encoder.frameSamples == packetSamples)
        let packets: [[UInt8]] = stride(from: 0, to: pcm.count - packetSamples + 1, by: packetSamples).map { start in
            pcm[start..<start + packetSamples].withUnsafeBufferPointer { Array(try! encoder.encode($0)) }
        }
        let decoder = try! OpusPayloadDecoder(sampleRate: 8000)
        var output = [Int16](repeating: 0, count: decoder.maxFrameSamples)
        // Sanity: every packet decodes to a full 20 ms frame (a scratch decoder, so the measured one starts fresh).
        do {
            let check = try! OpusPayloadDecoder(sampleRate: 8000)
            for packet in packets {
                let n = packet.withUnsafeBytes { raw in
                    output.withUnsafeMutableBufferPointer { out in try! check.decode(raw, into: out) }
                }
                precondition(n == packetSamples, "Opus packet decoded to \(n) samples")
            }
        }
        var next = 0
        Benchmark(
            "Opus decode 20 ms packet",
            configuration: .init(scalingFactor: .kilo)
        ) { benchmark in
            let start = monotonicNanos()
            output.withUnsafeMutableBufferPointer { out in
                for _ in benchmark.scaledIterations {
                    let samples = packets[next].withUnsafeBytes { raw in try! decoder.decode(raw, into: out) }
                    blackHole(samples)
                    next = next + 1 == packets.count ? 0 : next + 1
                }
            }
            let elapsed = monotonicNanos() - start
            benchmark.stopMeasurement()  // keep the bookkeeping below out of the measured region
            let decoded = Double(benchmark.scaledIterations.count)
            benchmark.measurement(realTime, Int((decoded * packetNanos / Double(max(elapsed, 1))).rounded()))
        }
    }

    // MARK: Model inference, one window (the built-in model: 3 networks, 164 inputs)
    do {
        let model = try! EmotionModel.builtIn()
        let runner = ModelRunner(model: model)
        var rng = SplitMix64(state: 7)
        let vector = (0..<model.inputs.count).map { i in
            model.normalization.mean.values[i] + Float(rng.nextSigned()) * model.normalization.scale.values[i]
        }
        Benchmark("Model inference, one window (x1000)", configuration: .init(scalingFactor: .kilo)) { benchmark in
            for _ in benchmark.scaledIterations { blackHole(runner.predict(vector)) }
        }
    }

    // MARK: Frame network, one leg-second (weights from the golden vectors' networks: the gated one of
    // `fusion-leg`, and the shipped one, which also reads each frame's mel bands)
    do {
        struct Golden: Decodable { var net: FrameNet }
        func goldenNet(_ file: String) -> FrameNet {
            let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
                "../../../Tests/EmotionTestSupport/Goldens/frame-network/" + file)
            return try! JSONDecoder().decode(Golden.self, from: try! Data(contentsOf: url)).net
        }
        let gatedNet = goldenNet("frame-net.json")
        // 10 s of fully analysed frames with their mel bands and the speech gate's verdicts, as a live leg
        // feeds them.
        let analyzer = try! StreamingAnalyzer(analyseEveryFrame: true)
        var frames: [[Float]] = [], mels: [[Float]] = [], speech: [Bool] = []
        analyzer.onFrame = { frame, isSpeech in
            frames.append(Array(frame.values))
            mels.append(frame.melBandsDB.map(Array.init) ?? [])
            speech.append(isSpeech)
        }
        analyzer.push(synthesizeSpeechLike(seconds: 10, sampleRate: 8000)) { _ in }
        var probabilities = [Float](repeating: 0, count: Emotion.allCases.count)
        for (name, net) in [("gated", gatedNet), ("shipped, with mel bands", goldenNet("frame-net-mel.json"))] {
            let stream = FrameNetStream(net: net)
            var next = 0
            // One iteration: a second of a leg (50 frames in, the window ending there scored), as the live
            // path does it; the leg wraps to a fresh one after 10 s, so the reset is counted too.
            Benchmark("Frame network (\(name)), one leg-second", configuration: .init(timeUnits: .microseconds)) {
                benchmark in
                for _ in benchmark.scaledIterations {
                    if next + 50 > frames.count {
                        next = 0
                        stream.reset()
                    }
                    for t in next..<(next + 50) {
                        frames[t].withUnsafeBufferPointer { frame in
                            mels[t].withUnsafeBufferPointer { bands in
                                stream.push(frame: frame, melBandsDB: bands, speech: speech[t])
                            }
                        }
                    }
                    next += 50
                    let start = max(0, next - net.windowFrames)
                    blackHole(stream.score(startFrame: start, endFrame: next, probabilities: &probabilities))
                }
            }
        }

        // 200 legs of the gated network, one second of each per iteration (divide the time by 200 for one
        // leg-second): each leg's convolutions run on its own, as the RTP worker runs them, or all legs'
        // together (FrameNetBatch, which measured slower here, so the worker does not batch).
        let legs = 200
        let streams = (0..<legs).map { _ in FrameNetStream(net: gatedNet) }
        let batch = FrameNetBatch(net: gatedNet)
        // Batches every 5, 10 or 100 ticks of 10 ms; 0 = each leg alone.
        for ticks in [0, 5, 10, 100] {
            var second = 0
            let name =
                "Frame network, 200 legs x 1 s, " + (ticks == 0 ? "each leg alone" : "batched every \(ticks * 10) ms")
            Benchmark(name, configuration: .init(timeUnits: .microseconds)) { benchmark in
                for _ in benchmark.scaledIterations {
                    if (second + 1) * 50 > frames.count {
                        second = 0
                        for s in streams { s.reset() }
                    }
                    let base = second * 50
                    for step in 0..<100 {
                        // A frame per leg every other 10 ms tick, legs out of phase by a frame.
                        let from = base + step / 2, to = base + (step + 1) / 2
                        for (leg, s) in streams.enumerated() {
                            for t in from..<to {
                                let f = (t + leg) % frames.count
                                frames[f].withUnsafeBufferPointer { s.push(frame: $0, speech: speech[f]) }
                            }
                        }
                        if ticks > 0, step % ticks == ticks - 1 { batch.advance(streams) }
                    }
                    second += 1
                    let end = second * 50
                    for s in streams {
                        blackHole(
                            s.score(
                                startFrame: max(0, end - gatedNet.windowFrames), endFrame: end,
                                probabilities: &probabilities
                            ))
                    }
                }
            }
        }
    }
}
