import Synchronization

/// How late the generator actually sent the packet that ends each second of each leg's audio, behind
/// its schedule. Windows end on whole seconds of a leg's media, so this is when a window's audio really
/// ended. On a box the generator shares with the service, the generator itself runs late when the two
/// cores are full; latency counted from the schedule then charges the generator's own lag to the
/// service, latency counted from the actual send does not. The load report gives both.
public final class SendLags: Sendable {
    /// Packets per second of media (20 ms each).
    static let packetsPerSecond = 50
    private let seconds: Int
    private let lags: Mutex<[Float]>

    public init(legs: Int, seconds: Int) {
        self.seconds = max(1, seconds)
        lags = Mutex([Float](repeating: .nan, count: max(0, legs) * self.seconds))
    }

    /// The packets that ended media second `seconds[i]` of leg `legs[i]` left `lag` seconds behind
    /// schedule (one batch).
    public func record(legs: ArraySlice<Int>, seconds: ArraySlice<Int>, lag: Double) {
        lags.withLock { table in
            for (leg, second) in zip(legs, seconds) where second >= 0 && second < self.seconds {
                let slot = leg * self.seconds + second
                if slot >= 0 && slot < table.count { table[slot] = Float(lag) }
            }
        }
    }

    /// The lag of the packet that ended media second `second` of `leg`, nil if it was not sent (yet).
    public func lag(leg: Int, second: Int) -> Double? {
        guard second >= 0, second < seconds else { return nil }
        let slot = leg * seconds + second
        let value = lags.withLock { slot >= 0 && slot < $0.count ? $0[slot] : .nan }
        return value.isNaN ? nil : Double(value)
    }
}
