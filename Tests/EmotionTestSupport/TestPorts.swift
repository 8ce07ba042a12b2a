import Foundation
import Glibc
import Synchronization

/// Loopback ports for tests, handed out in blocks that never overlap within a test process.
///
/// `make test` runs three processes at once (the unit tests, the black-box tests, the interop calls),
/// each with many tests in parallel. Ports picked at random collided: two tests took the same RTP
/// range, or a range inside the kernel's ephemeral range (32768-60999) was taken by some test's
/// client socket. So each process draws from its own band below the ephemeral range (the interop
/// script uses 10000-19999), from a counter, and a block is handed out only when every port in it
/// binds (UDP and TCP) at that moment.
public enum TestPorts {
    public enum Band: Sendable {
        /// The unit-test process (`swift test --skip EmotionTapEndToEndTests`).
        case unit
        /// The black-box process (the test bundle run with `--filter EmotionTapEndToEndTests`).
        case blackBox

        var range: Range<Int> {
            switch self {
            case .unit: 20000..<26000
            case .blackBox: 26000..<32000
            }
        }
    }

    private static let next = Mutex<[Int: Int]>([:])

    /// `count` consecutive free ports (the first even) from `band`.
    public static func block(_ count: Int, band: Band = .unit) -> ClosedRange<Int> {
        let range = band.range
        let size = (count + 1) & ~1
        for _ in 0..<(range.count / size) {
            let base = next.withLock { next in
                // A random start per process: two runs at once on one machine rarely meet.
                var base = next[range.lowerBound] ?? (range.lowerBound + Int.random(in: 0..<(range.count / 2)) * 2)
                if base + size > range.upperBound { base = range.lowerBound }
                next[range.lowerBound] = base + size
                return base
            }
            if (base..<(base + count)).allSatisfy(isFree) { return base...(base + count - 1) }
        }
        fatalError("no \(count) free consecutive ports in \(range)")
    }

    /// One free port from `band`.
    public static func one(band: Band = .unit) -> Int { block(1, band: band).lowerBound }

    /// Whether both a UDP and a TCP socket can bind `port` on 127.0.0.1 now.
    static func isFree(_ port: Int) -> Bool {
        [SOCK_DGRAM, SOCK_STREAM].allSatisfy { kind in
            let fd = socket(AF_INET, Int32(kind.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
        }
    }
}
