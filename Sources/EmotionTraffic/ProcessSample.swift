import Foundation
import Glibc

/// CPU time and resident memory of a process, and UDP receive drops, from Linux's /proc.
public enum ProcessSample {
    public static func read(_ pid: Int32) -> (cpuSeconds: Double, rssKB: Int) {
        var cpu = 0.0, rss = 0
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        {
            // Fields after "(comm)": state is 3rd, utime 14th, stime 15th of the whole line.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) {
                cpu = (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        {
            rss = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return (cpu, rss)
    }

    /// Sum of the "drops" column of /proc/net/udp for sockets bound to `ports`.
    public static func udpDrops(ports: Set<UInt16>) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/net/udp", encoding: .utf8) else { return 0 }
        var total = 0
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 13, let colon = f[1].lastIndex(of: ":"),
                let port = UInt16(f[1][f[1].index(after: colon)...], radix: 16),
                ports.contains(port), let drops = Int(f[12])
            else { continue }
            total += drops
        }
        return total
    }
}
