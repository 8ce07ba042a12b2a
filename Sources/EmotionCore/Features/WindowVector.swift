import Foundation

/// The statistics that summarise a window's speech frames into the model's input vector.
///
/// Everything here is invariant to the line's gain: absolute level only enters through energy
/// relative to the window's own median, and MFCC 0 (overall level) only through its spread.
public final class WindowVector {
    /// Frame features summarised by mean, standard deviation and 10th/50th/90th percentiles.
    static let spreadFeatures: [(String, Int)] = {
        var f: [(String, Int)] = [("zcr", FrameLayout.zcr), ("centroid", FrameLayout.centroid)]
        for i in FrameLayout.mfcc.dropFirst() { f.append(("mfcc\(i - FrameLayout.mfcc.lowerBound)", i)) }
        f += [
            ("voicing", FrameLayout.voicing), ("rolloff", FrameLayout.rolloff), ("flatness", FrameLayout.flatness),
            ("slope", FrameLayout.slope), ("flux", FrameLayout.flux), ("low_high_db", FrameLayout.lowHighRatio),
        ]
        return f
    }()
    static let statNames = ["mean", "std", "p10", "p50", "p90"]

    /// Names of the vector's entries, in order.
    public static let names: [String] = {
        var n: [String] = []
        for (name, _) in spreadFeatures { for s in statNames { n.append("\(name)_\(s)") } }
        for c in 0..<FeatureConfig.chromaCount { n.append("chroma\(c)_mean") }
        n += ["energy_rel_mean", "energy_std", "energy_rel_p10", "energy_rel_p90", "mfcc0_std"]
        n += [
            "pitch_st_mean", "pitch_st_std", "pitch_st_p10", "pitch_st_p50", "pitch_st_p90", "pitch_st_range",
            "voiced_fraction",
        ]
        for i in 1..<FeatureConfig.mfccCount { n.append("mfcc\(i)_delta") }
        n += ["energy_delta", "pitch_delta", "speech_bursts_per_s"]
        n += ["pitch_slope_st_per_s", "energy_slope_db_per_s", "voiced_runs_per_s", "voiced_run_mean_s"]
        return n
    }()

    public static var count: Int { names.count }

    private var column: [Float]
    private var voiced: [Float]

    init(capacity: Int) {
        column = []
        column.reserveCapacity(capacity)
        voiced = []
        voiced.reserveCapacity(capacity)
    }

    /// `rows` is a ring of frame rows; `slots` lists the speech frames in time order; `bursts` counts
    /// runs of consecutive speech frames.
    /// `times` are the speech frames' centres in seconds, parallel to `slots`.
    func compute(
        rows: UnsafeBufferPointer<Float>, slots: [Int], times: [Float], bursts: Int, speechSeconds: Double
    ) -> [Float] {
        let width = FrameLayout.count
        func value(_ slot: Int, _ feature: Int) -> Float { rows[slot * width + feature] }
        var out: [Float] = []
        out.reserveCapacity(Self.count)

        for (_, feature) in Self.spreadFeatures {
            fill(rows, slots, feature)
            appendSpread(&out)
        }
        for c in FrameLayout.chroma {
            var s: Float = 0
            for slot in slots { s += value(slot, c) }
            out.append(s / Float(slots.count))
        }

        // Level relative to the window's median speech level.
        fill(rows, slots, FrameLayout.energyDB)
        let (energyMean, energyStd) = meanAndStd()
        let energy = spreadPercentiles()
        out += [energyMean - energy.p50, energyStd, energy.p10 - energy.p50, energy.p90 - energy.p50]
        fill(rows, slots, FrameLayout.mfcc.lowerBound)
        out.append(meanAndStd().1)

        // Pitch in semitones re 100 Hz, over voiced frames only.
        voiced.removeAll(keepingCapacity: true)
        for slot in slots {
            let f0 = value(slot, FrameLayout.pitchHz)
            if f0 > 0 { voiced.append(12 * log2(f0 / 100)) }
        }
        if voiced.count >= 2 {
            column.removeAll(keepingCapacity: true)
            column.append(contentsOf: voiced)
            let pitch = appendSpread(&out)
            out.append(pitch.p90 - pitch.p10)
        } else {
            out += [0, 0, 0, 0, 0, 0]
        }
        out.append(Float(voiced.count) / Float(slots.count))

        // Dynamics: mean absolute change between consecutive speech frames.
        for i in FrameLayout.mfcc.dropFirst() { out.append(meanAbsoluteDelta(slots) { value($0, i) }) }
        out.append(meanAbsoluteDelta(slots) { value($0, FrameLayout.energyDB) })
        var pitchDelta: Float = 0, pitchPairs = 0
        for j in 1..<max(1, slots.count) {
            let a = value(slots[j - 1], FrameLayout.pitchHz), b = value(slots[j], FrameLayout.pitchHz)
            if a > 0, b > 0 { pitchDelta += abs(12 * log2(b / a)); pitchPairs += 1 }
        }
        out.append(pitchPairs > 0 ? pitchDelta / Float(pitchPairs) : 0)
        // Speech bursts (runs of speech frames) per second of speech: a speaking-rate proxy.
        out.append(Float(Double(bursts) / max(speechSeconds, 1e-3)))

        // Contours: least-squares trends of pitch (voiced frames) and level over the window.
        var pitchTimes: [Float] = [], pitchValues: [Float] = []
        for (j, slot) in slots.enumerated() {
            let f0 = value(slot, FrameLayout.pitchHz)
            if f0 > 0 { pitchTimes.append(times[j]); pitchValues.append(12 * log2(f0 / 100)) }
        }
        out.append(Self.slope(pitchTimes, pitchValues))
        fill(rows, slots, FrameLayout.energyDB)
        out.append(Self.slope(times, column))
        // Voiced runs: consecutive voiced speech frames (a syllable-rate proxy) and their mean length.
        var runs = 0, voicedFrames = 0
        var previousVoiced = false, previousTime: Float = -1
        let step = times.count >= 2 ? (times.last! - times.first!) / Float(max(1, times.count - 1)) : 0.02
        for (j, slot) in slots.enumerated() {
            let voiced = value(slot, FrameLayout.pitchHz) > 0
            let contiguous = previousTime >= 0 && times[j] - previousTime <= step * 1.5 + 1e-4
            if voiced { voicedFrames += 1 }
            if voiced && !(previousVoiced && contiguous) { runs += 1 }
            previousVoiced = voiced
            previousTime = times[j]
        }
        out.append(Float(Double(runs) / max(speechSeconds, 1e-3)))
        out.append(runs > 0 ? Float(voicedFrames) / Float(runs) * Float(speechSeconds) / Float(max(1, slots.count)) : 0)
        return out
    }

    /// Least-squares slope of `y` against `x`; 0 with fewer than 3 points.
    static func slope(_ x: [Float], _ y: [Float]) -> Float {
        guard x.count >= 3 else { return 0 }
        let mx = x.reduce(0, +) / Float(x.count), my = y.reduce(0, +) / Float(y.count)
        var num: Float = 0, den: Float = 0
        for (a, b) in zip(x, y) { num += (a - mx) * (b - my); den += (a - mx) * (a - mx) }
        return den > 1e-9 ? num / den : 0
    }

    /// `column` = one feature of the speech frames, in the reused buffer.
    private func fill(_ rows: UnsafeBufferPointer<Float>, _ slots: [Int], _ feature: Int) {
        column.removeAll(keepingCapacity: true)
        for slot in slots { column.append(rows[slot &* FrameLayout.count &+ feature]) }
    }

    private func meanAndStd() -> (Float, Float) {
        var sum: Double = 0
        for v in column { sum += Double(v) }
        let mean = sum / Double(column.count)
        var squares: Double = 0
        for v in column { squares += (Double(v) - mean) * (Double(v) - mean) }
        return (Float(mean), Float((squares / Double(column.count)).squareRoot()))
    }

    /// The 10th, 50th and 90th percentiles of `column` (numpy's linear interpolation), found by
    /// selection rather than a full sort: the same order statistics at a fraction of the cost.
    private func spreadPercentiles() -> (p10: Float, p50: Float, p90: Float) {
        column.withUnsafeMutableBufferPointer { values in
            var from = 0
            func percentile(_ q: Double) -> Float {
                let n = values.count
                let position = q * Double(n - 1)
                let lower = Int(position.rounded(.down))
                Self.select(values, rank: lower, from: from)
                // Everything after `lower` is now at least values[lower]: the next order statistic is their minimum.
                var next = values[lower]
                if lower + 1 < n {
                    next = values[lower + 1]
                    for i in (lower + 2)..<max(lower + 2, n) where values[i] < next { next = values[i] }
                }
                from = lower
                let fraction = Float(position - Double(lower))
                return values[lower] + (next - values[lower]) * fraction
            }
            return (percentile(0.1), percentile(0.5), percentile(0.9))
        }
    }

    /// Quickselect: afterwards `values[rank]` holds the value a sort would put there, nothing before it is
    /// larger and nothing after it smaller. Only `values[from...]` is rearranged; the caller guarantees
    /// `values[..<from]` are all no larger. The partition is branch-free (every element is swapped and the
    /// boundary moves by the comparison's result): on the hundred-odd values of a window's column the
    /// branches of a classic partition are mispredicted about half the time, which cost more than the swaps.
    static func select(_ values: UnsafeMutableBufferPointer<Float>, rank: Int, from: Int) {
        guard let v = values.baseAddress, rank >= from, rank < values.count else { return }
        var low = from, high = values.count - 1
        while high - low > 16 {
            // Median of three as the pivot, parked at `high`: sorted or reversed columns stay linear.
            let middle = low + (high - low) / 2
            if v[middle] < v[low] { swap(v, middle, low) }
            if v[high] < v[middle] { swap(v, high, middle) }
            if v[middle] < v[low] { swap(v, middle, low) }
            swap(v, middle, high)
            let pivot = v[high]
            var boundary = low  // v[low..<boundary] < pivot <= v[boundary..<j]
            var j = low
            while j < high {
                let x = v[j]
                v[j] = v[boundary]
                v[boundary] = x
                boundary &+= x < pivot ? 1 : 0
                j &+= 1
            }
            swap(v, boundary, high)
            if rank == boundary { return }
            if rank < boundary {
                high = boundary - 1
            } else {
                low = boundary + 1
                // A run of values equal to the pivot (a quantised column: zero-crossing counts) goes in one step.
                while low <= rank, v[low] == pivot { low += 1 }
                if low > rank { return }
            }
        }
        // Short ranges: insertion sort.
        if high > low {
            for i in (low + 1)...high {
                let x = v[i]
                var j = i - 1
                while j >= low, x < v[j] { v[j + 1] = v[j]; j -= 1 }
                v[j + 1] = x
            }
        }
    }

    @inline(__always)
    private static func swap(_ v: UnsafeMutablePointer<Float>, _ a: Int, _ b: Int) {
        let t = v[a]
        v[a] = v[b]
        v[b] = t
    }

    @discardableResult
    private func appendSpread(_ out: inout [Float]) -> (p10: Float, p50: Float, p90: Float) {
        let (mean, std) = meanAndStd()
        let p = spreadPercentiles()
        out += [mean, std, p.p10, p.p50, p.p90]
        return p
    }

    private func meanAbsoluteDelta(_ slots: [Int], _ value: (Int) -> Float) -> Float {
        guard slots.count >= 2 else { return 0 }
        var s: Float = 0
        for j in 1..<slots.count { s += abs(value(slots[j]) - value(slots[j - 1])) }
        return s / Float(slots.count - 1)
    }
}
