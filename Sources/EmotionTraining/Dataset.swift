import EmotionCore
import Foundation

/// The window vectors of one clip, as one variant of the channel heard it.
public struct ClipWindows: Sendable {
    public var entry: Int
    /// 0 = the clip as stored; 1... = augmented copies.
    public var variant: Int
    public var vectors: [[Float]]
    public var speechSeconds: [Double]
    /// Median speech level of each window (dB), for per-leg normalisation.
    public var levels: [Float]
}

/// Turns manifest clips into window vectors with the live path's `StreamingAnalyzer`, in parallel.
public enum DatasetBuilder {
    public struct Result: Sendable {
        public var clips: [ClipWindows]
        /// Manifest indices that could not be read, with the reason.
        public var skipped: [(Int, String)]
    }

    /// `augmentedCopies` extra variants per clip go through a random `ChannelSimulator` each.
    public static func build(
        entries: [ManifestEntry], corpora: URL, features: FeatureConfig, windows: WindowConfig,
        augmentedCopies: Int, seed: UInt64, progress: (@Sendable (Int) -> Void)? = nil
    ) -> Result {
        let results = parallelMap(
            count: entries.count, makeState: { try? StreamingAnalyzer(features: features, windows: windows) }
        ) {
            (analyzer: inout StreamingAnalyzer, i: Int) -> SlotValue in
            let entry = entries[i]
            let url = corpora.appendingPathComponent(entry.path)
            if let progress, i % 500 == 0 { progress(i) }
            do {
                let audio = try AudioInput.load(url, sampleRate: features.sampleRate)
                var variants: [ClipWindows] = []
                var rng = channelRandom(entry: i, seed: seed)
                for variant in 0...augmentedCopies {
                    let samples =
                        variant == 0 ? audio.samples : try ChannelSimulator.random(using: &rng).apply(audio.samples)
                    let ws = analyzer.windows(of: samples).filter { $0.vector != nil }
                    variants.append(
                        ClipWindows(
                            entry: i, variant: variant, vectors: ws.map { $0.vector! },
                            speechSeconds: ws.map(\.speechSeconds), levels: ws.map(\.levelDB)))
                }
                return .success(variants)
            } catch {
                return .failure("\(error)")
            }
        }
        var clips: [ClipWindows] = []
        var skipped: [(Int, String)] = []
        for i in 0..<entries.count {
            switch results[i] {
            case .success(let v): clips += v
            case .failure(let why): skipped.append((i, why))
            case nil: skipped.append((i, "not processed"))
            }
        }
        return Result(clips: clips, skipped: skipped)
    }
}

extension DatasetBuilder {
    /// Each clip's channels depend only on the seed and the clip, not on scheduling.
    static func channelRandom(entry: Int, seed: UInt64) -> SplitMix64 {
        SplitMix64(seed: seed ^ (UInt64(entry) &* 0x9E37_79B9_7F4A_7C15))
    }

    /// One variant of a clip exactly as `build` made it (0 = as stored).
    public static func samples(
        of entry: ManifestEntry, entry index: Int, variant: Int, corpora: URL, features: FeatureConfig, seed: UInt64
    ) throws -> [Float] {
        let audio = try AudioInput.load(corpora.appendingPathComponent(entry.path), sampleRate: features.sampleRate)
        guard variant > 0 else { return audio.samples }
        var rng = channelRandom(entry: index, seed: seed)
        var channel = ChannelSimulator.random(using: &rng)
        for _ in 1..<variant { channel = ChannelSimulator.random(using: &rng) }
        return try channel.apply(audio.samples)
    }
}

enum SlotValue: Sendable {
    case success([ClipWindows])
    case failure(String)
}

/// Runs `body` for indices 0..<count on every core, each worker with its own `state` (an analyser, a
/// predictor), and returns the results in index order, whatever the scheduling.
public func parallelMap<State, Result: Sendable>(
    count: Int, makeState: @Sendable () -> State?,
    _ body: @Sendable (inout State, Int) -> Result
) -> [Result?] {
    let slots = IndexedResults<Result>(count: count)
    let next = WorkCounter()
    DispatchQueue.concurrentPerform(iterations: max(1, ProcessInfo.processInfo.activeProcessorCount)) { _ in
        guard var state = makeState() else { return }
        while true {
            let i = next.next()
            if i >= count { break }
            slots.set(i, body(&state, i))
        }
    }
    return slots.all
}

/// Per-index results written from worker threads; each index is written once.
final class IndexedResults<T: Sendable>: @unchecked Sendable {
    // Guarded by `lock`; contention is negligible (one write per clip).
    private var values: [T?]
    private let lock = NSLock()
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: T) { lock.withLock { values[i] = v } }
    var all: [T?] { lock.withLock { values } }
}

final class WorkCounter: @unchecked Sendable {
    // Guarded by `lock`.
    private var value = -1
    private let lock = NSLock()
    func next() -> Int {
        lock.withLock {
            value += 1; return value
        }
    }
}
