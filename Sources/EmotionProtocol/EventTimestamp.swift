import Glibc

/// An event's `ts`: RFC 3339 in UTC with milliseconds ("2026-12-02T15:09:30.123Z"), what
/// ISO8601DateFormatter writes with `.withInternetDateTime` and `.withFractionalSeconds`, written
/// from `gmtime_r` and digits: the formatter goes through ICU and cost a third of publishing an event.
public enum EventTimestamp {
    /// `secondsSince1970` as the event clock shows it (milliseconds truncated, as the formatter does).
    public static func string(secondsSince1970: Double) -> String {
        let milliseconds = Int64((secondsSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
        let millis = Int(milliseconds - Int64(seconds) * 1000)
        var t = tm()
        gmtime_r(&seconds, &t)
        return String(unsafeUninitializedCapacity: 24) { out in
            var i = 0
            func put(_ value: Int, _ digits: Int) {
                var v = value
                for k in stride(from: digits - 1, through: 0, by: -1) {
                    out[i + k] = UInt8(ascii: "0") + UInt8(v % 10)
                    v /= 10
                }
                i += digits
            }
            func put(_ c: Unicode.Scalar) {
                out[i] = UInt8(ascii: c)
                i += 1
            }
            put(Int(t.tm_year) + 1900, 4)
            put("-")
            put(Int(t.tm_mon) + 1, 2)
            put("-")
            put(Int(t.tm_mday), 2)
            put("T")
            put(Int(t.tm_hour), 2)
            put(":")
            put(Int(t.tm_min), 2)
            put(":")
            put(Int(t.tm_sec), 2)
            put(".")
            put(millis, 3)
            put("Z")
            return i
        }
    }

    /// Now, on the wall clock.
    public static func now() -> String {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return string(secondsSince1970: Double(t.tv_sec) + Double(t.tv_nsec) / 1e9)
    }
}
