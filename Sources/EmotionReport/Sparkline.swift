/// Upset over time on one line of text: one character per bucket of consecutive windows, its height
/// the bucket's highest upset, "·" where no window in the bucket had enough speech.
enum Sparkline {
    /// From 0 (a space) to 1 (a full block).
    static let levels: [Character] = Array(" ▁▂▃▄▅▆▇█")
    static let missing: Character = "·"
    static let maxColumns = 60

    static func render(_ values: [Double?], maxColumns: Int = maxColumns) -> String {
        let size = bucketSize(count: values.count, maxColumns: maxColumns)
        var out = ""
        var start = 0
        while start < values.count {
            let bucket = values[start..<min(start + size, values.count)]
            // The highest, not the mean: a short burst of upset stays visible when buckets are wide.
            if let peak = bucket.compactMap({ Cell.usable($0) }).max() {
                out.append(character(for: peak))
            } else {
                out.append(missing)
            }
            start += size
        }
        return out
    }

    /// How many windows go into each column so that there are at most `maxColumns`.
    static func bucketSize(count: Int, maxColumns: Int = maxColumns) -> Int {
        let columns = max(1, maxColumns)
        return max(1, (count + columns - 1) / columns)
    }

    static func character(for upset: Double) -> Character {
        let top = levels.count - 1
        let level = Int((min(max(upset, 0), 1) * Double(top)).rounded())
        return levels[level]
    }
}
