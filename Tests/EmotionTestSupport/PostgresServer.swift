import Foundation

/// A throwaway PostgreSQL server from Debian's `postgresql` package, on a loopback port and a
/// temporary data directory, trusted for local connections; stopped and removed on deinit. As root
/// (CI, containers) it runs as the `postgres` user, since PostgreSQL refuses to run as root.
public final class PostgresServer {
    public let port: Int
    public let directory: URL
    private let process = Process()
    public static let binaries: URL? = {
        let base = URL(fileURLWithPath: "/usr/lib/postgresql")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []
        return versions.compactMap(Int.init).sorted().last.map { base.appendingPathComponent("\($0)/bin") }
            .flatMap {
                FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("postgres").path) ? $0 : nil
            }
    }()
    public static var available: Bool { binaries != nil }
    public var url: String { "postgres://postgres@127.0.0.1:\(port)/postgres" }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A server on a free port of `band` (the test process's).
    public init(band: TestPorts.Band = .unit) throws {
        guard let bin = Self.binaries else { throw Failure(description: "PostgreSQL is not installed") }
        port = TestPorts.one(band: band)
        directory = URL(fileURLWithPath: "/tmp/emotiontap-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let asRoot = getuid() == 0
        if asRoot {
            let chown = try run(URL(fileURLWithPath: "/bin/chown"), ["postgres:postgres", directory.path], timeout: 10)
            guard chown.status == 0 else { throw Failure(description: "chown: \(chown.stderr)") }
        }
        func command(_ tool: String, _ args: [String]) -> (URL, [String]) {
            let path = bin.appendingPathComponent(tool).path
            return asRoot
                ? (URL(fileURLWithPath: "/usr/sbin/runuser"), ["-u", "postgres", "--", path] + args)
                : (URL(fileURLWithPath: path), args)
        }
        let data = directory.appendingPathComponent("data").path
        let (initdb, initArgs) = command("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"])
        let made = try run(initdb, initArgs, timeout: 60)
        guard made.status == 0 else { throw Failure(description: "initdb: \(made.stderr)") }
        let (postgres, args) = command(
            "postgres",
            [
                "-D", data, "-p", "\(port)", "-k", directory.path, "-c", "listen_addresses=127.0.0.1", "-c",
                "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            ])
        process.executableURL = postgres
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Ready when it accepts TCP connections (bounded).
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let (isready, readyArgs) = command("pg_isready", ["-h", "127.0.0.1", "-p", "\(port)", "-q"])
            if let r = try? run(isready, readyArgs, timeout: 5), r.status == 0 { return }
            guard process.isRunning else { throw Failure(description: "postgres exited at start") }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw Failure(description: "postgres did not accept connections in 20 s")
    }

    deinit {
        if process.isRunning {
            // SIGINT: PostgreSQL's fast shutdown.
            kill(process.processIdentifier, SIGINT)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { process.terminate() }
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
