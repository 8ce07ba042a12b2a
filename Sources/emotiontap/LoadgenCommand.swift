import ArgumentParser
import EmotionCore
import EmotionTraffic
import EmotionUDP
import Foundation

struct LoadgenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadgen",
        abstract: "Create N legs through the control API and stream real RTP to each at real-time pace."
    )

    @Option(help: "Host the service's RTP ports are on.")
    var to: String = "127.0.0.1"
    @Option(help: "Number of concurrent legs.")
    var legs: Int = 100
    @Option(help: "Seconds to stream.")
    var duration: Double = 30
    @Option(help: "Codec: pcmu or opus.")
    var codec: VoiceCodec = .pcmu
    @Option(help: "Drop this fraction of packets.")
    var loss: Double = 0
    @Option(help: "Control API base URL.")
    var viaApi: String = "http://127.0.0.1:8088"
    @Option(help: "Audio each leg plays in a loop (8 kHz mu-law or any WAV the reader takes).")
    var file: String = "config/samples/sample-call.wav"
    @Option(help: "Also listen for the service's events here (HOST:PORT) to count them and measure latency.")
    var listen: String?
    @Option(help: "Stream the legs over a WebSocket protocol instead of RTP: twilio.")
    var stream: String?
    @Option(help: "Bearer token for the control API.")
    var token: String?
    @Option(
        help: "The service's process id: report its CPU (cores), resident memory per leg and UDP drops (Linux /proc).")
    var reportPid: Int32?
    @Option(
        help: ArgumentHelp(
            "Also send a hostile packet (random bytes, truncated or bad headers, overrunning padding, extension or "
                + "CSRC list, huge datagram, unknown payload type) after this fraction of packets, kinds in turn; "
                + "counts are printed.")
    )
    var malformed: Double = 0
    @Option(
        help: ArgumentHelp(
            "Comma-separated hostile kinds to send (default: all): "
                + "\(HostilePacket.allCases.map(\.rawValue).joined(separator: ", ")).")
    )
    var malformedKinds: String?
    @Option(
        help: ArgumentHelp(
            "With --report-pid: sample the service's resident memory every this many seconds and report its growth "
                + "after warm-up.")
    )
    var rssEvery: Double?

    func validate() throws {
        guard (1...20000).contains(legs) else { throw ValidationError("--legs must be 1...20000") }
        guard duration > 0, duration <= 86400 else { throw ValidationError("--duration must be positive") }
        guard (0..<1).contains(loss) else { throw ValidationError("--loss must be in 0..<1") }
        guard (0...1).contains(malformed) else { throw ValidationError("--malformed must be in 0...1") }
        _ = try hostileKinds()
        if let rssEvery {
            guard rssEvery >= 1, reportPid != nil else {
                throw ValidationError("--rss-every needs --report-pid and at least 1 s")
            }
        }
        guard codec != .pcma else { throw ValidationError("--codec must be pcmu or opus") }
        if let listen { do { _ = try UDPEndpoint(listen) } catch { throw ValidationError("--listen: \(error)") } }
    }

    func hostileKinds() throws -> [HostilePacket] {
        guard let malformedKinds else { return HostilePacket.allCases }
        return try malformedKinds.split(separator: ",").map {
            guard let kind = HostilePacket(rawValue: String($0)) else {
                throw ValidationError("unknown --malformed-kinds entry '\($0)'")
            }
            return kind
        }
    }

    func run() async throws {
        var options = LoadGenerator.Options()
        options.host = to
        options.legs = legs
        options.duration = duration
        options.codec = codec
        options.loss = loss
        options.apiURL = viaApi
        options.token = token
        options.listen = try listen.map { try UDPEndpoint($0) }
        options.reportPID = reportPid
        options.malformed = malformed
        options.hostileKinds = try hostileKinds()
        options.rssEvery = rssEvery
        options.stream = stream
        let audio = try orExit { try AudioInput.load(URL(fileURLWithPath: file)) }
        let report = try await orExit {
            try await LoadGenerator(options: options, audio: audio).run { StandardError.line($0) }
        }
        print(report.joined(separator: "\n"))
    }
}
