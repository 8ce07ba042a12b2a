import EmotionCore

/// How far apart calm speech and upset stretches are for any escalation rule that reads a leg's recent
/// upset levels: for each calm segment (speech outside the upset stretches and their grace), the highest
/// mean calibrated upset over `windows` consecutive scored windows; for each upset stretch, the highest such
/// mean among windows ending inside it (or within the catch grace after it). A rule that escalates no calm
/// segment cannot escalate a stretch whose highest mean is below the calm segments' highest.
public struct EscalationHeadroom: Sendable {
    public var windows: Int
    /// Highest K-window mean per calm segment, sorted.
    public var calmPeaks: [Double]
    /// Highest K-window mean per upset stretch (calm -> upset -> calm calls and upset-throughout calls), sorted.
    public var stretchPeaks: [Double]

    public init(_ calls: [ScoredCall], calibration: UpsetCalibration, windows: Int) {
        self.windows = windows
        var calm: [Double] = [], stretches: [Double] = []
        for scored in calls {
            let scoredWindows = scored.windows.compactMap { w in
                w.rawUpset.map { (end: w.end, p: Double(calibration.apply($0))) }
            }
            guard scoredWindows.count >= windows else { continue }
            var means: [(end: Double, mean: Double)] = []
            var sum = 0.0
            for (i, w) in scoredWindows.enumerated() {
                sum += w.p
                if i >= windows { sum -= scoredWindows[i - windows].p }
                if i >= windows - 1 { means.append((w.end, sum / Double(windows))) }
            }
            let upset = scored.call.upsetStretches
            // A window reports the 3 s before its end; calm segments start the grace after a stretch.
            let calmMeans = means.filter { m in
                !upset.contains { m.end - 3 < $0.end + CallReplay.escalationGrace && m.end > $0.start }
            }
            if let peak = calmMeans.map(\.mean).max() { calm.append(peak) }
            for s in upset {
                let inside = means.filter { $0.end > s.start && $0.end <= s.end + CallReplay.catchGrace }
                if let peak = inside.map(\.mean).max() { stretches.append(peak) }
            }
        }
        calmPeaks = calm.sorted()
        stretchPeaks = stretches.sorted()
    }

    /// Share of upset stretches whose peak is above `level`.
    public func stretchesAbove(_ level: Double) -> Double {
        stretchPeaks.isEmpty ? 0 : Double(stretchPeaks.filter { $0 > level }.count) / Double(stretchPeaks.count)
    }

    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))]
    }
}
