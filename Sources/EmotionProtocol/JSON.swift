import Foundation

/// A JSON value with object keys kept in insertion order, so events read the same way every time
/// (`v`, `type`, `seq`, `ts` first) and their bytes are stable for signing.
public indirect enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool { a.serialized == b.serialized }

    public var serialized: String {
        var out = ""
        write(into: &out)
        return out
    }

    public func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isFinite {
                // Short, stable, round-trippable enough for probabilities and seconds.
                if d == d.rounded() && abs(d) < 1e15 {
                    out += String(Int64(d))
                } else if let short = JSON.shortDecimal(d) {
                    out += short
                } else {
                    out += String(format: "%.6g", d)
                }
            } else {
                out += "null"
            }
        case .string(let s): JSON.quote(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out += "," }
                JSON.quote(key, into: &out)
                out += ":"
                value.write(into: &out)
            }
            out += "}"
        }
    }

    /// `%.6g`'s text without the C formatter, for the values events carry (rounded to a few places):
    /// when the shortest round-trip text has at most 6 significant digits and no exponent, `%.6g`
    /// writes those same digits. Nil otherwise (the caller formats it).
    @inline(__always)
    static func shortDecimal(_ d: Double) -> String? {
        let magnitude = abs(d)
        guard magnitude >= 1e-4, magnitude < 1e6 else { return nil }
        let text = d.description
        var significant = 0
        var leading = true
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: "0") where leading: continue
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                leading = false
                significant += 1
            case UInt8(ascii: "."), UInt8(ascii: "-"): continue
            default: return nil  // an exponent
            }
        }
        return significant <= 6 ? text : nil
    }

    public static func quote(_ s: String, into out: inout String) {
        out += "\""
        // Most strings (ids, labels, roles) need no escape: append them whole.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += s
            out += "\""
            return
        }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(Int64(value)) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSON {
    /// A number rounded to `places` decimals: short on the wire, the same bytes on every run.
    public static func number(_ v: Double, places: Int) -> JSON {
        .double(Rounding.round(v, places))
    }
    public static func number(_ v: Float, places: Int) -> JSON { number(Double(v), places: places) }
    public static func optional(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
    public static func count<T: BinaryInteger>(_ v: T) -> JSON { .int(Int64(v)) }
}
