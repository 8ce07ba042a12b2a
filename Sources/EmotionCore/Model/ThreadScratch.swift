import Glibc

/// Scratch floats owned by the calling thread, reused by every caller on it: the frame network's GEMM
/// columns are needed only while one leg computes, and a worker thread computes one leg at a time, so
/// one buffer per thread replaces one per leg (about 30 kB of each leg's memory: 1,500 legs took 359 MB
/// instead of 399 MB).
enum ThreadScratch {
    private final class Buffer {
        var pointer: UnsafeMutablePointer<Float>
        var capacity: Int
        init(_ capacity: Int) {
            pointer = .allocate(capacity: capacity)
            self.capacity = capacity
        }
        deinit { pointer.deallocate() }
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // The thread's buffer is released when the thread exits.
        pthread_key_create(&key) { raw in
            guard let raw else { return }
            Unmanaged<Buffer>.fromOpaque(raw).release()
        }
        return key
    }()

    /// At least `count` floats, valid until this thread asks again; no allocation once the thread's
    /// buffer is big enough.
    @inline(__always)
    static func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        if let raw = pthread_getspecific(key) {
            let buffer = Unmanaged<Buffer>.fromOpaque(raw).takeUnretainedValue()
            if buffer.capacity >= count { return buffer.pointer }
            Unmanaged<Buffer>.fromOpaque(raw).release()
        }
        let buffer = Buffer(count)
        pthread_setspecific(key, Unmanaged.passRetained(buffer).toOpaque())
        return buffer.pointer
    }
}
