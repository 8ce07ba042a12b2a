import EmotionProtocol
import Foundation
import Testing

@Suite("wire format: event timestamps and numbers written without Foundation's formatters")
struct WireFormatTests {
    @Test("EventTimestamp writes what ISO8601DateFormatter writes (UTC, milliseconds)")
    func timestampsMatchTheFormatter() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var instants: [Double] = [0, 0.999, 951_782_400.5, 1_764_690_570.123, 1_798_761_599.9999, 4_102_444_800.001]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 { instants.append(Double.random(in: 0..<4_102_444_800, using: &generator)) }
        for t in instants {
            // Whole milliseconds, so that both truncate the same value.
            let ms = (t * 1000).rounded(.down) / 1000 + 0.0002
            #expect(
                EventTimestamp.string(secondsSince1970: ms) == formatter.string(from: Date(timeIntervalSince1970: ms)))
        }
    }

    @Test("numbers are written as %.6g writes them")
    func numbersMatchPrintf() {
        var values: [Double] = [0.5, -0.25, 1.25, 0.0001, 0.00012, 99999.5, 100000.5, 123456, 0.1 + 0.2, 1e-5, 2.5e7]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let magnitude = Double.random(in: -6...7, using: &generator)
            let v = pow(10, magnitude) * (Bool.random(using: &generator) ? 1 : -1)
            let places = Int.random(in: 0...6, using: &generator)
            let scale = pow(10, Double(places))
            values.append(v)
            values.append((v * scale).rounded() / scale)
        }
        for v in values where v != v.rounded() {
            #expect(JSON.double(v).serialized == String(format: "%.6g", v), "\(v)")
        }
    }

    @Test("strings are escaped as before: quotes, backslashes, control characters; others whole")
    func stringEscapes() {
        #expect(JSON.string("call-1 é ☎").serialized == "\"call-1 é ☎\"")
        #expect(JSON.string("a\"b\\c\nd\u{1}").serialized == #""a\"b\\c\nd\u0001""#)
    }
}
