import EmotionCore
import EmotionMedia
import EmotionTestSupport
import Foundation
import Testing
@testable import EmotionTapServer
import Logging

@Suite("configuration")
struct ConfigTests {
    @Test("the shipped config loads and equals the built-in defaults")
    func shippedConfig() throws {
        let text = try String(contentsOf: Repo.root.appendingPathComponent("config/emotiontap.yaml"), encoding: .utf8)
        #expect(try ServerConfig.load(yaml: text, source: "emotiontap.yaml") == ServerConfig())
    }

    @Test("the state thresholds come from the model unless the config sets them")
    func decisionOverrides() throws {
        var model = try EmotionModel.builtIn()
        model.decision = DecisionTuning(
            smoothing: 0.4, enterUpset: 0.9, exitUpset: 0.8, escalateUpset: 0.95, escalateUpsetSeconds: 12,
            escalateWithinSeconds: 20, chosenFor: "test")
        let plain = try ServerConfig.load(
            yaml: "policy:\n  smoothing: null\n  escalate_upset_s: null\n", source: "c.yaml")
        let p = try plain.resolvedPolicy(model: model)
        #expect(p.smoothing == 0.4 && p.enterUpset == 0.9 && p.exitUpset == 0.8 && p.escalateUpset == 0.95)
        #expect(p.escalateUpsetSeconds == 12 && p.escalateWithinSeconds == 20)
        let set = try ServerConfig.load(
            yaml:
                "policy:\n  enter_upset: 0.95\n  escalate_upset: 0.97\n  escalate_upset_s: 30\n  escalate_within_s: 45\n",
            source: "c.yaml")
        let q = try set.resolvedPolicy(model: model)
        #expect(q.enterUpset == 0.95 && q.exitUpset == 0.8 && q.smoothing == 0.4 && q.escalateUpset == 0.97)
        #expect(q.escalateUpsetSeconds == 30 && q.escalateWithinSeconds == 45)
        // More seconds than the model's span can hold is refused rather than never firing.
        let tooLong = try ServerConfig.load(yaml: "policy:\n  escalate_upset_s: 30\n", source: "c.yaml")
        #expect { try tooLong.resolvedPolicy(model: model) } throws: {
            "\($0)".contains("escalate_upset_s (30.0) must not exceed escalate_within_s (20.0)")
        }
        // A model from before the duration and span were tuned carries neither: the policy's 20 s in 60 s.
        model.decision.escalateUpsetSeconds = nil
        model.decision.escalateWithinSeconds = nil
        let old = try plain.resolvedPolicy(model: model)
        #expect(old.escalateUpsetSeconds == 20 && old.escalateWithinSeconds == 60)
        // An exit above the model's enter is refused when the service is assembled, naming both.
        let bad = try ServerConfig.load(yaml: "policy:\n  exit_upset: 0.95\n", source: "c.yaml")
        #expect { try bad.resolvedPolicy(model: model) } throws: {
            "\($0)".contains("exit_upset (0.95)") && "\($0)".contains("the model's")
        }
    }

    @Test("a wrong key or value names the key and its line")
    func errors() {
        let cases: [(String, String)] = [
            ("http:\n  host: 127.0.0.1\n  prot: 80\n", "http.prot (line 3): unknown key"),
            ("rtp:\n  ports: \"5000-4000\"\n", "rtp.ports (line 2)"),
            ("rtp:\n  leg_timeout_s: soon\n", "rtp.leg_timeout_s (line 2): must be a number"),
            ("events:\n  targets: [\"nowhere\"]\n", "events.targets (line 2)"),
            ("policy:\n  enter_upset: 0.3\n  exit_upset: 0.5\n", "exit_upset"),
            (
                "static_legs:\n  - {port: 40001, role: customer}\n",
                "static_legs[0] (line 2): needs port, call_id and role"
            ),
            ("colour: blue\n", "colour (line 1): unknown key"),
            ("rtp: [1, 2]\n", "rtp (line 1): must be a mapping"),
            ("rtp:\n  allow: [\"10.0.0.0/8\", \"lan\"]\n", "rtp.allow (line 2): 'lan' is not an IPv4 CIDR"),
            ("rtp:\n  lock_source: maybe\n", "rtp.lock_source (line 2): must be true or false"),
            ("rtp:\n  max_delay_ms: 10\n", "rtp.max_delay_ms (line 2): must be in 100...60000"),
            ("rtp:\n  read_interval_ms: 5\n", "rtp.read_interval_ms (line 2): must be in 10...500"),
            ("rtp:\n  max_delay_ms: 150\n", "must exceed rtp.read_interval_ms"),
            ("rtp:\n  read_interval_ms: 400\n  max_backlog_ms: 300\n", "rtp.max_backlog_ms"),
            ("rtp:\n  worker_nice: -30\n", "rtp.worker_nice (line 2): must be in -20...19"),
            ("rtp:\n  max_backlog_ms: soon\n", "rtp.max_backlog_ms (line 2): must be an integer"),
            ("sip:\n  media_address: 0.0.0.0\n", "sip.media_address (line 2): must be a unicast IPv4 address"),
            ("sip:\n  session_expires: 60\n  min_session_expires: 120\n", "sip.min_session_expires"),
        ]
        for (yaml, expected) in cases {
            #expect(throws: ConfigError.self) { try ServerConfig.load(yaml: yaml, source: "c.yaml") }
            do {
                _ = try ServerConfig.load(yaml: yaml, source: "c.yaml")
            } catch {
                #expect(error.description.contains(expected), "\(error.description) should mention \(expected)")
            }
        }
    }

    @Test("the overload marks: max_delay_ms defaults to 2 s, max_backlog_ms is off unless set")
    func overloadMarks() throws {
        #expect(ServerConfig().maxDelayMilliseconds == 2000 && ServerConfig().maxBacklogMilliseconds == nil)
        let config = try ServerConfig.load(
            yaml: "rtp: {max_delay_ms: 1500, max_backlog_ms: 400, max_worker_busy: 0.9}\n", source: "c.yaml")
        #expect(config.maxDelayMilliseconds == 1500 && config.maxBacklogMilliseconds == 400)
        #expect(config.maxWorkerBusy == 0.9)
        #expect(ServerConfig().readIntervalMilliseconds == 200)
        let interval = try ServerConfig.load(yaml: "rtp: {read_interval_ms: 20}\n", source: "c.yaml")
        #expect(interval.readIntervalMilliseconds == 20)
        #expect(ServerConfig().workerNice == nil)
        #expect(try ServerConfig.load(yaml: "rtp: {worker_nice: -10}\n", source: "c.yaml").workerNice == -10)
    }

    @Test("rtp.worker_nice is the RTP worker threads' own nice value, the process's other threads keep theirs")
    func workerNice() async throws {
        // A positive value needs no privilege, so the test runs anywhere.
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port) { c in
            c.workers = 1
            c.workerNice = 7
        }
        try await s.run { _ in
            // Other tests' services (in parallel, nice 0) have worker threads of the same name.
            var threads: [(name: String, nice: Int)] = []
            for _ in 0..<50 {
                threads = Self.threadNice()
                if threads.contains(where: { $0 == ("rtp-worker-0", 7) }) { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(threads.contains { $0 == ("rtp-worker-0", 7) }, "threads and their nice values: \(threads)")
            #expect(threads.allSatisfy { $0.nice != 7 || $0.name.hasPrefix("rtp-worker-") })
        }
    }

    /// This process's threads' names and nice values (/proc/self/task/*/stat, field 19).
    static func threadNice() -> [(name: String, nice: Int)] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        var out: [(name: String, nice: Int)] = []
        for task in tasks {
            guard let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")"), let open = stat.firstIndex(of: "(")
            else { continue }
            let name = String(stat[stat.index(after: open)..<close])
            // Fields after the name start at field 3 (state); nice is field 19.
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            if fields.count > 16, let value = Int(fields[16]) { out.append((name, value)) }
        }
        return out
    }

    @Test(
        "SIP on a wildcard RTP address needs sip.media_address for its SDP answers; the session timer is configurable")
    func sipMediaAddress() throws {
        var config = try ServerConfig.load(
            yaml: "rtp: {host: 0.0.0.0}\nsip: {listen: \"127.0.0.1:15060\"}\n", source: "c.yaml")
        #expect(throws: ServiceError.self) {
            try EmotionTapService(config: config, model: try EmotionModel.builtIn(), logger: Logger(label: "test"))
        }
        do {
            _ = try EmotionTapService(config: config, model: try EmotionModel.builtIn(), logger: Logger(label: "test"))
        } catch {
            #expect("\(error)".contains("sip.media_address"))
        }
        config = try ServerConfig.load(
            yaml:
                "rtp: {host: 0.0.0.0}\nsip: {media_address: 192.0.2.10, session_expires: 600, min_session_expires: 120}\n",
            source: "c.yaml")
        #expect(config.sip.advertisedMediaAddress(rtpHost: config.rtpHost) == "192.0.2.10")
        #expect(config.sip.sessionExpires == 600 && config.sip.minSessionExpires == 120)
        #expect(ServerConfig().sip.advertisedMediaAddress(rtpHost: "127.0.0.1") == "127.0.0.1")
    }

    @Test("the event log rotates by size and keeps N files")
    func rotation() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("e.jsonl").path
        let log = try RotatingLog(path: path, maxBytes: 4096, keep: 2)
        let line = String(repeating: "x", count: 99)
        for _ in 0..<200 { try log.append(line) }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(files == ["e.jsonl", "e.jsonl.1", "e.jsonl.2"])
        for f in files { #expect(try Data(contentsOf: dir.appendingPathComponent(f)).count <= 4096 + 100) }
    }
}
