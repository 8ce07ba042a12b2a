import CFFTW
import Synchronization

/// A real-to-complex FFT of one size, backed by a shared FFTW plan.
///
/// FFTW's planner is not thread-safe, but executing an existing plan on new arrays is: plans are
/// created once per size under a lock and shared; each `RealFFT` owns its aligned buffers.
final class RealFFT {
    let size: Int
    /// Time-domain input, `size` floats (FFTW-aligned).
    let input: UnsafeMutablePointer<Float>
    /// Spectrum, `size / 2 + 1` complex values as interleaved (re, im).
    let output: UnsafeMutablePointer<Float>
    private let forward: fftwf_plan
    private let inverse: fftwf_plan

    init(size: Int) {
        self.size = size
        input = fftwf_alloc_real(size)!
        output = UnsafeMutableRawPointer(fftwf_alloc_complex(size / 2 + 1)!).bindMemory(
            to: Float.self, capacity: size + 2)
        input.initialize(repeating: 0, count: size)
        output.initialize(repeating: 0, count: size + 2)
        (forward, inverse) = RealFFT.plans(size: size)
    }

    deinit {
        fftwf_free(input)
        fftwf_free(output)
    }

    /// `output` = DFT(`input`).
    @inline(__always)
    func forwardTransform() {
        output.withMemoryRebound(to: fftwf_complex.self, capacity: size / 2 + 1) { spectrum in
            fftwf_execute_dft_r2c(forward, input, spectrum)
        }
    }

    /// `input` = unnormalised inverse DFT(`output`) (destroys `output`).
    @inline(__always)
    func inverseTransform() {
        output.withMemoryRebound(to: fftwf_complex.self, capacity: size / 2 + 1) { spectrum in
            fftwf_execute_dft_c2r(inverse, spectrum, input)
        }
    }

    // MARK: Plan cache

    private struct PlanPair: @unchecked Sendable {
        // Plans are immutable once made and FFTW documents fftwf_execute_* on them as thread-safe.
        let forward: fftwf_plan
        let inverse: fftwf_plan
    }

    private static let cache = Mutex<[Int: PlanPair]>([:])

    private static func plans(size: Int) -> (fftwf_plan, fftwf_plan) {
        cache.withLock { cache in
            if let p = cache[size] { return (p.forward, p.inverse) }
            // Plan on scratch arrays with the same alignment as every RealFFT's buffers.
            let i = fftwf_alloc_real(size)!
            let o = fftwf_alloc_complex(size / 2 + 1)!
            defer { fftwf_free(i); fftwf_free(o) }
            // ESTIMATE: deterministic plans, so results never depend on timing during planning.
            let flags = UInt32(FFTW_ESTIMATE) | UInt32(FFTW_DESTROY_INPUT)
            let f = fftwf_plan_dft_r2c_1d(Int32(size), i, o, flags)!
            let b = fftwf_plan_dft_c2r_1d(Int32(size), o, i, flags)!
            cache[size] = PlanPair(forward: f, inverse: b)
            return (f, b)
        }
    }
}
