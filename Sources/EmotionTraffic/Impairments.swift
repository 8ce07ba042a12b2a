import EmotionCore

/// A bad network between a sender and the service: bursty loss (Gilbert model), packets swapped
/// with their successor, and random delay (later packets overtake). Seeded, so a run replays.
public struct Impairments: Sendable {
    /// Long-run fraction of packets lost.
    public var loss: Double
    /// Mean loss burst in packets (1 = independent losses).
    public var burst: Double
    /// Fraction of packets swapped with the next one.
    public var reorder: Double
    /// Each packet is delayed by a uniform 0...this many milliseconds.
    public var jitterMilliseconds: Double

    public init(loss: Double = 0, burst: Double = 1, reorder: Double = 0, jitterMilliseconds: Double = 0) {
        self.loss = loss
        self.burst = burst
        self.reorder = reorder
        self.jitterMilliseconds = jitterMilliseconds
    }

    /// The loss process: a burst ends with probability 1/burst; one starts at the rate that makes the
    /// long-run loss fraction `loss`.
    public struct GilbertLoss: Sendable {
        let endBurst: Double
        let startBurst: Double
        var inBurst = false

        public init(loss: Double, burst: Double) {
            endBurst = 1 / burst
            startBurst = loss >= 1 ? 1 : min(1, loss / (burst * (1 - loss)))
        }

        /// Whether the next packet is lost.
        public mutating func drops(_ rng: inout SplitMix64) -> Bool {
            inBurst = inBurst ? rng.unit() >= endBurst : rng.unit() < startBurst
            return inBurst
        }
    }
}
