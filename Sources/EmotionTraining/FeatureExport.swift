import EmotionCore
import Foundation

/// Writes a float32 matrix as a NumPy `.npy` file (format 1.0, little-endian, C order), row by row,
/// so that a trainer in Python reads exactly the numbers the Swift core computed.
public final class NpyWriter {
    public let columns: Int
    private let handle: FileHandle
    private let url: URL
    private var rows = 0
    private static let headerLength = 128

    public init(url: URL, columns: Int) throws {
        self.columns = columns
        self.url = url
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw ExportError(description: "\(url.path): cannot create")
        }
        handle = try FileHandle(forWritingTo: url)
        // The row count is known only at the end: reserve a fixed-size header and rewrite it then.
        try handle.write(contentsOf: Self.header(rows: 0, columns: columns))
    }

    public func append(_ values: UnsafeBufferPointer<Float>) throws {
        precondition(values.count % columns == 0, "npy rows of \(columns) floats")
        try handle.write(contentsOf: Data(buffer: values))
        rows += values.count / columns
    }

    public func append(_ values: [Float]) throws { try values.withUnsafeBufferPointer { try append($0) } }

    public func close() throws {
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: Self.header(rows: rows, columns: columns))
        try handle.close()
    }

    static func header(rows: Int, columns: Int) -> Data {
        var text = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        let prefix = 10  // magic (6) + version (2) + header length (2)
        text += String(repeating: " ", count: headerLength - prefix - text.utf8.count - 1) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(text.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(text.utf8))
        return data
    }
}

public struct ExportError: Error, CustomStringConvertible {
    public let description: String
}

/// The frames and windows of every clip (and of channel-simulated copies), as the live path computes them:
/// `frames.npy` (one row per frame: `FrameLayout` plus the speech gate's verdict), `windows.npy` (the
/// model's window vectors), `window_spans.npy` (start, end, speech seconds) and `clips.csv` tying rows to
/// the manifest; with `melBands`, also `frames_mel.npy` (each frame's mel bands in dB, row for row with
/// `frames.npy`), for experiments with inputs the live path does not read yet.
public enum FeatureExport {
    public static let frameColumns = FrameLayout.names + ["speech"]

    struct Clip: Sendable {
        var frames: [Float]
        var windows: [Float]
        var spans: [Float]
        var mel: [Float]
    }

    public static func run(
        entries: [ManifestEntry], corpora: URL, out: URL, features: FeatureConfig, windows: WindowConfig,
        augmentedCopies: Int, seed: UInt64, folds: Int, foldSeed: UInt64, melBands: Bool = false,
        log: @escaping @Sendable (String) -> Void
    ) throws -> (clips: Int, frames: Int, windows: Int, skipped: [(String, String)]) {
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let frameWriter = try NpyWriter(url: out.appendingPathComponent("frames.npy"), columns: frameColumns.count)
        let windowWriter = try NpyWriter(
            url: out.appendingPathComponent("windows.npy"), columns: WindowVector.count)
        let spanWriter = try NpyWriter(url: out.appendingPathComponent("window_spans.npy"), columns: 3)
        let melWriter =
            melBands ? try NpyWriter(url: out.appendingPathComponent("frames_mel.npy"), columns: features.nMels) : nil
        // The folds `train --cv` uses, so that a trainer elsewhere holds out exactly the same speakers.
        let fold = TrainingRun.speakerFolds(entries, folds: max(1, folds), seed: foldSeed)
        var csv =
            "row,entry,variant,channel,path,corpus,speaker,emotion,upset,fold,frame_offset,frames,window_offset,windows\n"
        var frameCount = 0, windowCount = 0, row = 0
        var skipped: [(String, String)] = []
        let batch = 256
        for batchStart in stride(from: 0, to: entries.count, by: batch) {
            let indices = Array(batchStart..<min(entries.count, batchStart + batch))
            let results = parallelMap(
                count: indices.count,
                makeState: { () -> (FrameFeatureExtractor, WindowAggregator)? in
                    guard let e = try? FrameFeatureExtractor(config: features),
                        let a = try? WindowAggregator(config: windows, frameStep: features.frameStep)
                    else { return nil }
                    return (e, a)
                }
            ) {
                (
                    state: inout (FrameFeatureExtractor, WindowAggregator), k: Int
                ) -> Result<[(String, Clip)], ExportError> in
                let i = indices[k]
                do {
                    let audio = try AudioInput.load(
                        corpora.appendingPathComponent(entries[i].path), sampleRate: features.sampleRate)
                    // The same per-clip channel draws as training's data set.
                    var rng = SplitMix64(seed: seed ^ (UInt64(i) &* 0x9E37_79B9_7F4A_7C15))
                    var out: [(String, Clip)] = []
                    for variant in 0...augmentedCopies {
                        var channel = "as stored"
                        var samples = audio.samples
                        if variant > 0 {
                            let simulator = ChannelSimulator.random(using: &rng)
                            channel = simulator.summary
                            samples = try simulator.apply(samples)
                        }
                        out.append(
                            (channel, clip(samples, extractor: state.0, aggregator: state.1, melBands: melBands)))
                    }
                    return .success(out)
                } catch {
                    return .failure(ExportError(description: "\(error)"))
                }
            }
            for (k, result) in results.enumerated() {
                let i = indices[k], e = entries[i]
                switch result {
                case .success(let variants):
                    for (variant, (channel, c)) in variants.enumerated() {
                        let frames = c.frames.count / frameColumns.count, ws = c.windows.count / WindowVector.count
                        try frameWriter.append(c.frames)
                        try windowWriter.append(c.windows)
                        try spanWriter.append(c.spans)
                        try melWriter?.append(c.mel)
                        csv +=
                            "\(row),\(i),\(variant),\(channel),\(e.path),\(e.corpus),\(e.speaker),"
                            + "\(e.emotion.rawValue),\(e.upset ? 1 : 0),\(fold[i]),\(frameCount),\(frames),\(windowCount),\(ws)\n"
                        row += 1
                        frameCount += frames
                        windowCount += ws
                    }
                case .failure(let why): skipped.append((e.path, why.description))
                case nil: skipped.append((e.path, "not processed"))
                }
            }
            log("exported \(min(entries.count, batchStart + batch))/\(entries.count) clips")
        }
        try frameWriter.close()
        try windowWriter.close()
        try spanWriter.close()
        try melWriter?.close()
        try csv.write(to: out.appendingPathComponent("clips.csv"), atomically: true, encoding: .utf8)
        var meta: [String: Any] = [
            "frame_columns": frameColumns, "window_columns": WindowVector.names,
            "window_span_columns": ["start_s", "end_s", "speech_s"],
            "frame_step_s": features.frameStep, "sample_rate": features.sampleRate,
            "augmented_copies": augmentedCopies, "seed": seed, "folds": folds, "fold_seed": foldSeed,
        ]
        if melBands { meta["mel_bands"] = features.nMels }
        let data = try JSONSerialization.data(withJSONObject: meta, options: [.sortedKeys, .prettyPrinted])
        try data.write(to: out.appendingPathComponent("meta.json"))
        return (row, frameCount, windowCount, skipped)
    }

    /// Every frame fully analysed (a learned model reads silence too) with the live gate's verdict beside it,
    /// and the windows the live path would make of them.
    static func clip(
        _ samples: [Float], extractor: FrameFeatureExtractor, aggregator: WindowAggregator, melBands: Bool = false
    ) -> Clip {
        extractor.reset()
        aggregator.reset()
        var frames: [Float] = [], windows: [Float] = [], spans: [Float] = [], mel: [Float] = []
        frames.reserveCapacity(extractor.frameCount(forSamples: samples.count) * frameColumns.count)
        func take(_ frame: FrameView) {
            let speech = aggregator.judge(energyDB: frame.energyDB)
            frames.append(contentsOf: frame.values)
            frames.append(speech ? 1 : 0)
            // Every frame is fully analysed here (no gate), so every frame has its bands.
            if melBands, let bands = frame.melBandsDB { mel.append(contentsOf: bands) }
            if let w = aggregator.add(frame) { keep(w) }
        }
        func keep(_ w: WindowFeatures) {
            guard let v = w.vector else { return }
            windows.append(contentsOf: v)
            spans.append(contentsOf: [Float(w.start), Float(w.end), Float(w.speechSeconds)])
        }
        extractor.push(samples) { take($0) }
        extractor.finish { take($0) }
        if let w = aggregator.finish() { keep(w) }
        return Clip(frames: frames, windows: windows, spans: spans, mel: mel)
    }
}
