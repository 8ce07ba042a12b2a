/// Reductions with several independent accumulators: a plain `s += a[i] * b[i]` loop is one long
/// dependency chain that the compiler may not reorder (floating-point addition is not associative),
/// so it runs at one add per 4 cycles. Independent partial sums keep the adders busy.
public enum VectorMath {
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        var s4: Float = 0, s5: Float = 0, s6: Float = 0, s7: Float = 0
        var i = 0
        while i + 8 <= n {
            s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3]
            s4 += a[i + 4] * b[i + 4]; s5 += a[i + 5] * b[i + 5]; s6 += a[i + 6] * b[i + 6]; s7 += a[i + 7] * b[i + 7]
            i += 8
        }
        while i < n { s0 += a[i] * b[i]; i += 1 }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    }

    @inline(__always)
    public static func sum(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        var s4: Float = 0, s5: Float = 0, s6: Float = 0, s7: Float = 0
        var i = 0
        while i + 8 <= n {
            s0 += a[i]; s1 += a[i + 1]; s2 += a[i + 2]; s3 += a[i + 3]
            s4 += a[i + 4]; s5 += a[i + 5]; s6 += a[i + 6]; s7 += a[i + 7]
            i += 8
        }
        while i < n { s0 += a[i]; i += 1 }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
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
