import Glibc

/// Scratch memory owned by the calling thread, one buffer per use, reused by every caller on that
/// thread. What a leg needs only while it computes (the frame network's GEMM columns, a packet's
/// decoded samples) need not be held per leg: a worker thread computes one leg at a time, so one
/// buffer per thread replaces one per leg (thousands of legs share a handful of buffers).
public enum ThreadScratch {
    /// The uses, each with its own buffer: a use may call code that asks for another.
    public enum Use: Int, CaseIterable, Sendable {
        case frameNetColumns
        case decodedSamples
        case analysisSamples
    }

    /// Raw slots rather than arrays: this is asked for several times per packet, and an array in a class
    /// costs an exclusivity check and a uniqueness check on every read and write.
    private final class Buffers {
        let pointers = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: Use.allCases.count)
        let capacities = UnsafeMutablePointer<Int>.allocate(capacity: Use.allCases.count)
        init() {
            pointers.initialize(repeating: nil, count: Use.allCases.count)
            capacities.initialize(repeating: 0, count: Use.allCases.count)
        }
        deinit {
            for i in 0..<Use.allCases.count { pointers[i]?.deallocate() }
            pointers.deallocate()
            capacities.deallocate()
        }
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // The thread's buffers are released when the thread exits.
        pthread_key_create(&key) { raw in
            guard let raw else { return }
            Unmanaged<Buffers>.fromOpaque(raw).release()
        }
        return key
    }()

    /// At least `count` values of `type` for `use`, valid until this thread asks for the same use
    /// again; no allocation once the thread's buffer is big enough. The contents are whatever the
    /// last user left.
    @inline(__always)
    public static func buffer<T>(_ type: T.Type, _ count: Int, for use: Use) -> UnsafeMutableBufferPointer<T> {
        let buffers: Buffers
        if let raw = pthread_getspecific(key) {
            buffers = Unmanaged<Buffers>.fromOpaque(raw).takeUnretainedValue()
        } else {
            buffers = Buffers()
            pthread_setspecific(key, Unmanaged.passRetained(buffers).toOpaque())
        }
        let bytes = count * MemoryLayout<T>.stride
        let i = use.rawValue
        if buffers.capacities[i] < bytes {
            buffers.pointers[i]?.deallocate()
            let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            buffers.pointers[i] = p
            buffers.capacities[i] = bytes
        }
        return UnsafeMutableBufferPointer(
            start: buffers.pointers[i]!.bindMemory(to: T.self, capacity: count), count: count)
    }

    /// At least `count` floats for `use`.
    @inline(__always)
    static func floats(_ count: Int, for use: Use = .frameNetColumns) -> UnsafeMutablePointer<Float> {
        buffer(Float.self, count, for: use).baseAddress!
    }
}
