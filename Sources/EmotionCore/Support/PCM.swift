/// 16-bit linear PCM and the core's Float samples (full scale 1.0), one conversion each way.
public enum PCM {
    @inline(__always)
    public static func int16(_ sample: Float) -> Int16 { Int16(clamping: Int((sample * 32768).rounded())) }

    public static func int16(_ samples: [Float]) -> [Int16] { samples.map(int16) }

    /// Writes `source.count` floats into `destination`.
    @inline(__always)
    public static func toFloat(
        _ source: UnsafeBufferPointer<Int16>, into destination: UnsafeMutableBufferPointer<Float>
    ) {
        for i in 0..<source.count { destination[i] = Float(source[i]) / 32768 }
    }
}
