import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Headless Chromium driven through its DevTools pipe (`--remote-debugging-pipe`: it reads commands on
/// fd 3 and answers on fd 4, one JSON message each, NUL-terminated), for pages that never finish
/// loading. `--dump-dom` and `--screenshot` act at the load event, before a page's EventSource has
/// opened, and `--virtual-time-budget` never runs out while a stream is open (virtual time stands
/// still during pending fetches), so a live page is read here the way `--dump-dom` reads it, but when
/// the test asks.
final class HeadlessChromium {
    /// `chromium` on the PATH (Debian's package), or nil.
    static let executable: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/chromium" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }()

    private let pid: pid_t
    private let commands: Int32
    private let answers: Int32
    private let profile: URL
    private var pending: [UInt8] = []
    private var nextID = 0
    private var closed = false

    init(executable: String) throws {
        profile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "emotiontap-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        // A browser that dies mid-command must fail the test, not kill the test process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let toBrowser = try Self.pipe(), fromBrowser = try Self.pipe()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Both ends are close-on-exec and above 4, so dup2 gives the child exactly fds 3 and 4.
        posix_spawn_file_actions_adddup2(&actions, toBrowser.read, 3)
        posix_spawn_file_actions_adddup2(&actions, fromBrowser.write, 4)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let arguments = [
            executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
            "--user-data-dir=\(profile.path)", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
            "--window-size=1280,800", "about:blank",
        ]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        // The browser starts with no signal blocked and SIGPIPE and SIGTERM at their defaults, whatever the
        // test thread that spawns it has.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        Glibc.close(toBrowser.read)
        Glibc.close(fromBrowser.write)
        guard status == 0 else {
            Glibc.close(toBrowser.write)
            Glibc.close(fromBrowser.read)
            throw HarnessError("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        pid = child
        commands = toBrowser.write
        answers = fromBrowser.read
    }

    deinit { close() }

    /// Opens `url` in a new tab with a `width` x `height` viewport; returns its session for the calls below.
    func open(_ url: String, width: Int = 1280, height: Int = 800) throws -> String {
        guard let target = try call("Target.createTarget", ["url": "about:blank"])["targetId"] as? String,
            let session = try call("Target.attachToTarget", ["targetId": target, "flatten": true])["sessionId"]
                as? String
        else { throw HarnessError("chromium opened no tab") }
        try call(
            "Emulation.setDeviceMetricsOverride",
            ["width": width, "height": height, "deviceScaleFactor": 1, "mobile": false], session: session)
        try call("Page.navigate", ["url": url], session: session)
        return session
    }

    /// The document as `--dump-dom` prints it (doctype, then the root element's outer HTML), now.
    func dumpDOM(_ session: String) throws -> String {
        let expression =
            "(document.doctype ? new XMLSerializer().serializeToString(document.doctype) + '\\n' : '') + "
            + "document.documentElement.outerHTML"
        let result = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true], session: session)
        guard let value = (result["result"] as? [String: Any])?["value"] as? String else {
            throw HarnessError("no DOM: \(result)")
        }
        return value
    }

    /// The value of a script run in the page; a promise is awaited (bounded by `timeout`).
    func evaluate(_ expression: String, session: String, timeout: Double = 30) throws -> Any? {
        let result = try call(
            "Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true],
            session: session, timeout: timeout)
        if let exception = result["exceptionDetails"] { throw HarnessError("script failed: \(exception)") }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// A PNG of the viewport, as `--screenshot` takes it.
    func screenshot(_ session: String) throws -> Data {
        let result = try call("Page.captureScreenshot", ["format": "png"], session: session)
        guard let base64 = result["data"] as? String, let png = Data(base64Encoded: base64) else {
            throw HarnessError("no screenshot")
        }
        return png
    }

    /// Asks the browser to quit, then waits for it (bounded; SIGKILL after 10 s) and removes its profile.
    func close() {
        guard !closed else { return }
        closed = true
        _ = try? call("Browser.close", timeout: 5)
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(10)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            usleep(50_000)
        }
        Glibc.close(commands)
        Glibc.close(answers)
        try? FileManager.default.removeItem(at: profile)
    }

    // MARK: The protocol

    /// Sends one command and waits (bounded) for its answer, skipping the events in between.
    @discardableResult
    func call(
        _ method: String, _ params: [String: Any] = [:], session: String? = nil, timeout: Double = 15
    ) throws -> [String: Any] {
        nextID += 1
        let id = nextID
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let session { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(commands, $0.baseAddress, $0.count) }
            guard n > 0 else { throw HarnessError("chromium closed its command pipe") }
            sent += n
        }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            while let end = pending.firstIndex(of: 0) {
                let text = Data(pending[..<end])
                pending.removeSubrange(...end)
                guard let answer = try? JSONSerialization.jsonObject(with: text) as? [String: Any],
                    answer["id"] as? Int == id
                else { continue }
                if let error = answer["error"] { throw HarnessError("\(method): \(error)") }
                return answer["result"] as? [String: Any] ?? [:]
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw HarnessError("chromium did not answer \(method) in \(timeout) s") }
            var poller = pollfd(fd: answers, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(remaining * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = read(answers, &chunk, chunk.count)
            guard n > 0 else { throw HarnessError("chromium closed its answer pipe") }
            pending += chunk[..<n]
        }
    }

    /// A close-on-exec pipe whose ends are both above 4 (so neither is one of the child's 3 and 4).
    private static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        // Glibc's pipe2 is not imported: moving each end sets close-on-exec and keeps it clear of 3 and 4.
        guard Glibc.pipe(&fds) == 0 else { throw HarnessError("pipe: \(String(cString: strerror(errno)))") }
        let ends = fds.map { fd -> Int32 in
            let moved = fcntl(fd, F_DUPFD_CLOEXEC, 10)
            Glibc.close(fd)
            return moved
        }
        return (ends[0], ends[1])
    }
}
