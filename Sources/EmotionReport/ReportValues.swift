import Foundation

// MARK: - Values for people (text and HTML)

/// How a value reads in text and HTML, so both say the same thing the same way.
enum Cell {
    /// A missing value: no such leg, not ended yet, not enough speech.
    static let missing = "-"

    /// A share or fraction of 0...1 as a whole percentage: "62 %".
    static func percent(_ value: Double?) -> String {
        guard let value = usable(value) else { return missing }
        return String(format: "%.0f %%", value * 100)
    }

    /// A probability of 0...1 with two places: "0.81".
    static func probability(_ value: Double?) -> String {
        guard let value = usable(value) else { return missing }
        return String(format: "%.2f", value)
    }

    /// Seconds with one place and the unit: "62.4 s".
    static func seconds(_ value: Double?) -> String {
        guard let value = usable(value) else { return missing }
        return String(format: "%.1f s", value)
    }

    static func count(_ value: Int?) -> String { value.map(String.init) ?? missing }

    static func yesNo(_ value: Bool?) -> String { value.map { $0 ? "yes" : "no" } ?? missing }

    static func text(_ value: String?) -> String {
        guard let value, !value.isEmpty else { return missing }
        return value
    }

    /// nil for values that cannot be shown as numbers; -0 as 0 so a rounding never prints "-0".
    static func usable(_ value: Double?) -> Double? {
        guard let value, value.isFinite else { return nil }
        return value == 0 ? 0 : value
    }
}

// MARK: - Values for spreadsheets (CSV)

/// How a value reads in CSV: '.' decimals at fixed precision, an empty field for nil, true/false.
enum CSVField {
    /// Probabilities, fractions and shares: three places.
    static func fraction(_ value: Double?) -> String {
        Cell.usable(value).map { String(format: "%.3f", $0) } ?? ""
    }

    /// Seconds: two places.
    static func seconds(_ value: Double?) -> String {
        Cell.usable(value).map { String(format: "%.2f", $0) } ?? ""
    }

    static func count(_ value: Int?) -> String { value.map(String.init) ?? "" }

    static func bool(_ value: Bool?) -> String { value.map { $0 ? "true" : "false" } ?? "" }

    static func text(_ value: String?) -> String { value ?? "" }
}
