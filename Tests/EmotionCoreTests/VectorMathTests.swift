import EmotionTestSupport
import Foundation
import Testing

@testable import EmotionCore

@Suite("vector math")
struct VectorMathTests {
    /// The eight-accumulator loops the SIMD versions replace, written out.
    static func scalarDot(_ a: [Float], _ b: [Float]) -> Float {
        var s = [Float](repeating: 0, count: 8)
        var i = 0
        while i + 8 <= a.count {
            for j in 0..<8 { s[j] += a[i + j] * b[i + j] }
            i += 8
        }
        while i < a.count { s[0] += a[i] * b[i]; i += 1 }
        return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
    }

    @Test("dot and sum give the eight scalar accumulators' result bit for bit", arguments: [1, 7, 8, 9, 40, 257])
    func sameAsScalar(count: Int) {
        var rng = SeededGenerator(seed: UInt64(count + 1))
        let a = (0..<count).map { _ in Float.random(in: -3...3, using: &rng) }
        let b = (0..<count).map { _ in Float.random(in: -3...3, using: &rng) }
        let ones = [Float](repeating: 1, count: count)
        let dot = VectorMath.dot(a, b, count)
        let sum = VectorMath.sum(a, count)
        #expect(dot.bitPattern == Self.scalarDot(a, b).bitPattern)
        #expect(sum.bitPattern == Self.scalarDot(a, ones).bitPattern)
    }

    @Test(
        "absoluteChange sums |a * scale - previous| in eight lanes and leaves a * scale behind",
        arguments: [1, 7, 8, 9, 257])
    func absoluteChangeMatchesScalar(count: Int) {
        var rng = SeededGenerator(seed: UInt64(count + 11))
        let a = (0..<count).map { _ in Float.random(in: 0...3, using: &rng) }
        var previous = (0..<count).map { _ in Float.random(in: 0...0.01, using: &rng) }
        let scale: Float = 1 / a.reduce(0, +)
        let shape = a.map { $0 * scale }
        let differences = zip(shape, previous).map { abs($0 - $1) }
        let expected = Self.scalarDot(differences, [Float](repeating: 1, count: count))
        let got = previous.withUnsafeMutableBufferPointer {
            VectorMath.absoluteChange(a, scale: scale, previous: $0.baseAddress!, count)
        }
        #expect(got.bitPattern == expected.bitPattern)
        #expect(previous == shape)
    }

    @Test("tanhDot is within 2e-7 of libm's tanh, signs, zeros, large and tiny inputs included")
    func tanhDotMatchesLibm() {
        var values: [Float] = [
            0, -0.0, 1e-30, -1e-30, 1e-4, -1e-4, 0.5, -0.5, 1, -1, 3, -3, 9, -9, 19.9, 25, -25, 1e6, -1e6,
        ]
        var rng = SeededGenerator(seed: 11)
        values += (0..<1000).map { _ in Float.random(in: -12...12, using: &rng) }
        values += (0..<5).map { _ in Float.random(in: -0.01...0.01, using: &rng) }  // an odd count: the scalar tail too
        for (i, x) in values.enumerated() {
            // One value at a time through the vector lanes (the others zero), against tanhf.
            var lane = [Float](repeating: 0, count: 8)
            var weight = [Float](repeating: 0, count: 8)
            lane[i % 8] = x
            weight[i % 8] = 1
            let got = VectorMath.tanhDot(weight, lane, 8)
            #expect(abs(got - tanh(x)) <= 2e-7, "tanh(\(x)): \(got) against \(tanh(x))")
        }
        let weights = values.map { _ in Float.random(in: -1...1, using: &rng) }
        var expected: Float = 0
        for (w, x) in zip(weights, values) { expected += w * tanh(x) }
        #expect(abs(VectorMath.tanhDot(weights, values, values.count) - expected) <= 1e-4)
        #expect(VectorMath.tanhDot([Float](repeating: 1, count: 8), [Float](repeating: .nan, count: 8), 8).isNaN)
    }
}
