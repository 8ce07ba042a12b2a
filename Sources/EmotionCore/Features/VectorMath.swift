import Foundation

/// Reductions with several independent accumulators: a plain `s += a[i] * b[i]` loop is one long
/// dependency chain that the compiler may not reorder (floating-point addition is not associative),
/// so it runs at one add per 4 cycles. Independent partial sums keep the adders busy.
///
/// Lane `j` of the eight accumulators sums elements `j, j + 8, j + 16, ...`, the tail goes to lane 0 and the
/// lanes are added pairwise at the end: written with `SIMD8` so that the baseline x86-64 build (SSE2) runs
/// it as whole vector multiplies and adds, in exactly the order of eight scalar accumulators.
public enum VectorMath {
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var lanes = SIMD8<Float>()
        let x = UnsafeRawPointer(a), y = UnsafeRawPointer(b)
        var i = 0
        while i &+ 8 <= n {
            lanes +=
                x.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
                * y.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
            i &+= 8
        }
        while i < n { lanes[0] += a[i] * b[i]; i &+= 1 }
        return Self.pairwiseSum(lanes)
    }

    @inline(__always)
    public static func sum(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        var lanes = SIMD8<Float>()
        let x = UnsafeRawPointer(a)
        var i = 0
        while i &+ 8 <= n {
            lanes += x.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
            i &+= 8
        }
        while i < n { lanes[0] += a[i]; i &+= 1 }
        return Self.pairwiseSum(lanes)
    }

    @inline(__always)
    static func pairwiseSum(_ s: SIMD8<Float>) -> Float {
        ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
    }

    /// `sum(w[i] * tanh(x[i]))`, eight lanes at a time: tanh from one exponential, exp(-2|x|) by range
    /// reduction to 2^n * e^r with a degree-6 polynomial for e^r, all in SSE2's integer and float lanes
    /// (libm's tanhf one value at a time was most of the frame network's attention). Absolute error
    /// below 2e-7 against tanhf (`VectorMathTests`).
    @inline(__always)
    public static func tanhDot(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var lanes = SIMD8<Float>()
        var i = 0
        while i &+ 8 <= n {
            lanes +=
                UnsafeRawPointer(w + i).loadUnaligned(as: SIMD8<Float>.self)
                * tanh8(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
            i &+= 8
        }
        while i < n { lanes[0] += w[i] * tanh(x[i]); i &+= 1 }
        return pairwiseSum(lanes)
    }

    @inline(__always)
    static func tanh8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let magnitude = x.replacing(with: -x, where: x .< 0)
        // exp(y), y = -2|x| clamped to [-40, 0] (below it tanh is 1 in float anyway).
        let y = (-2 * magnitude).replacing(with: -40, where: magnitude .> 20)
        // n = round(y / ln 2) with the 1.5 * 2^23 trick, whose low mantissa bits then hold n.
        let magic: Float = 12_582_912
        let shifted = y * 1.442_695_04 + magic
        let n = shifted - magic
        let r = (y - n * 0.693_145_75) - n * 1.428_606_8e-6
        // e^r on [-ln2/2, ln2/2].
        var p = SIMD8<Float>(repeating: 1.0 / 720)
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let nBits = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((nBits &+ 127) &<< 23, to: SIMD8<Float>.self)
        let t = p * scale
        let positive = (1 - t) / (1 + t)
        return positive.replacing(with: -positive, where: x .< 0)
    }

    /// `out[i] += a[i]`, eight lanes at a time.
    @inline(__always)
    public static func add(_ a: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i &+ 8 <= n {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            let y = UnsafeRawPointer(out + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: x + y, as: SIMD8<Float>.self)
            i &+= 8
        }
        while i < n { out[i] += a[i]; i &+= 1 }
    }

    /// `out[i] = a[i] * b[i]`, eight lanes at a time (the scalar loop does not vectorise: the pointers may alias).
    @inline(__always)
    public static func multiply(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        var i = 0
        while i + 8 <= n {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: x * y, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { out[i] = a[i] * b[i]; i += 1 }
    }

    /// `sum(|a[i] * scale - previous[i]|)`, then `previous[i] = a[i] * scale`: the spectral flux against
    /// the previous frame's normalised spectrum, eight lanes at a time (the scalar loop's running sum is
    /// one dependency chain, and its store to `previous` keeps it from vectorising).
    @inline(__always)
    public static func absoluteChange(
        _ a: UnsafePointer<Float>, scale: Float, previous: UnsafeMutablePointer<Float>, _ n: Int
    ) -> Float {
        var lanes = SIMD8<Float>()
        var i = 0
        while i &+ 8 <= n {
            let shape = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) * scale
            let difference = shape - UnsafeRawPointer(previous + i).loadUnaligned(as: SIMD8<Float>.self)
            lanes += difference.replacing(with: -difference, where: difference .< 0)
            UnsafeMutableRawPointer(previous + i).storeBytes(of: shape, as: SIMD8<Float>.self)
            i &+= 8
        }
        while i < n {
            let shape = a[i] * scale
            lanes[0] += abs(shape - previous[i])
            previous[i] = shape
            i &+= 1
        }
        return pairwiseSum(lanes)
    }

    /// How many `i` in `from..<to` have `a[i - 1]` and `a[i]` on different sides of `threshold`
    /// (below it counts as negative): the zero-crossing count, eight neighbours at a time.
    @inline(__always)
    public static func signChanges(_ a: UnsafePointer<Float>, from: Int, to: Int, threshold: Float) -> Int {
        var lanes = SIMD8<Int32>()
        let limit = SIMD8<Float>(repeating: threshold)
        var i = from
        while i + 8 <= to {
            let previous = UnsafeRawPointer(a + i - 1).loadUnaligned(as: SIMD8<Float>.self) .< limit
            let current = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) .< limit
            lanes &+= SIMD8<Int32>(repeating: 0).replacing(with: 1, where: previous .^ current)
            i += 8
        }
        var count = Int(lanes.wrappedSum())
        while i < to {
            if (a[i - 1] < threshold) != (a[i] < threshold) { count &+= 1 }
            i += 1
        }
        return count
    }
}
