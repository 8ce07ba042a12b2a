import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionTapServer
import EmotionTestSupport
import EmotionTraffic
import EmotionUDP
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// The real service built in-process (EmotionTapService, as `serve` builds it) and listening on a
/// loopback port the system picks; its API driven over HTTP, RTP from the project's sender, events on
/// a real UDP socket.
struct InProcessService {
    let service: EmotionTapService
    let directory: TemporaryDirectory
    let hmacKey = "in-process-\(UUID().uuidString)"

    init(
        eventPort: Int, rtpPortCount: Int = 20, token: String? = nil, configure: (inout ServerConfig) -> Void = { _ in }
    ) throws {
        directory = try TemporaryDirectory()
        var config = ServerConfig()
        config.rtpPorts = TestPorts.block(rtpPortCount)
        config.httpPort = 0
        config.eventTargets = ["127.0.0.1:\(eventPort)"]
        config.eventLogPath = directory.url.appendingPathComponent("events.jsonl").path
        config.history.store = directory.url.appendingPathComponent("history.sqlite").path
        config.hmacKey = hmacKey
        config.authToken = token
        config.heartbeatSeconds = 1
        configure(&config)
        service = try EmotionTapService(
            config: config, model: try EmotionModel.builtIn(), logger: Logger(label: "test"))
    }

    var logPath: URL { URL(fileURLWithPath: service.config.eventLogPath!) }

    /// Runs the service (API, legs, heartbeats) while `body` runs with a client for it, then shuts it
    /// down gracefully as SIGTERM would (every leg gets its `leg.end`).
    func run(token: String? = nil, _ body: @escaping @Sendable (ControlClient) async throws -> Void) async throws {
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        try await service.prepare()
        let app = service.buildApplication { port in portSink.yield(port) }
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            do {
                try await body(try ControlClient(baseURL: "http://127.0.0.1:\(port)", token: token))
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

@Suite("control API, in-process", .serialized)
struct ControlAPITests {
    @Test("errors are JSON with a message and the right status, and nothing changes")
    func errors() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port, rtpPortCount: 4)
        try await s.run { client in
            func post(_ body: String) async throws -> ControlClient.Answer {
                try await client.request("POST", "/v1/legs", body: body)
            }
            #expect(try await client.request("GET", "/v1/legs/leg-nope").status == 404)
            #expect(try await client.request("DELETE", "/v1/legs/leg-nope").status == 404)
            #expect(try await client.request("GET", "/v1/calls/none").status == 404)
            #expect(try await post("{not json").status == 400)
            #expect(try await post("[1,2]").status == 400)
            #expect(try await post(#"{"call_id": 5, "role": "customer"}"#).status == 400)
            let unknown = try await post(#"{"call_id": "a", "role": "customer", "colour": 1}"#)
            #expect(unknown.status == 400 && unknown.errorMessage.contains("colour"))
            #expect((unknown.json["error"] as? [String: Any])?["status"] as? Int == 400)
            #expect(try await post(#"{"call_id": "a b;rm", "role": "customer"}"#).status == 400)
            #expect(try await post(#"{"call_id": "a", "role": "customer", "codec": "g729"}"#).status == 400)
            #expect(try await post(#"{"call_id": "a", "role": "customer", "port": 80}"#).status == 400)
            let huge = "{\"call_id\": \"" + String(repeating: "x", count: 40000) + "\", \"role\": \"c\"}"
            #expect(try await post(huge).status == 413)
            #expect((try await client.request("GET", "/v1/legs").json["legs"] as? [Any])?.isEmpty == true)

            // Four ports, two even ones (legs take even ports; RTCP's port + 1 stays free): the third leg
            // gets 503, an explicit port in use 409, existing legs unaffected.
            let first = try await post(#"{"call_id": "a", "role": "customer"}"#)
            #expect(first.status == 201)
            let firstID = try #require(first.json["leg_id"] as? String)
            let firstPort = try #require((first.json["rtp"] as? [String: Any])?["port"] as? Int)
            let second = try await post(#"{"call_id": "a", "role": "agent"}"#)
            #expect(second.status == 201)
            let secondPort = try #require((second.json["rtp"] as? [String: Any])?["port"] as? Int)
            #expect(firstPort % 2 == 0 && secondPort == firstPort + 2, "even ports: \(firstPort), \(secondPort)")
            let full = try await post(#"{"call_id": "a", "role": "x"}"#)
            #expect(full.status == 503 && full.errorMessage.contains("no free RTP port"))
            #expect(try await post("{\"call_id\": \"a\", \"role\": \"x\", \"port\": \(firstPort)}").status == 409)
            let leg = try await client.request("GET", "/v1/legs/\(firstID)")
            #expect(leg.status == 200 && leg.json["state"] as? String == "waiting")
            #expect(Set(((leg.json["rtp"] as? [String: Any]) ?? [:]).keys) == Set(RTPTotals.fields.map(\.name)))
            #expect(
                try await client.request("GET", "/metrics").body.contains("emotiontap_legs_created_total 2")
            )
        }
    }

    @Test("a bearer token, when configured, is required (and /healthz stays open)")
    func bearerToken() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port, token: "s3cret-token")
        try await s.run { client in
            let good = ["Authorization": "Bearer s3cret-token"]
            #expect(try await client.request("GET", "/v1/legs", headers: good).status == 200)
            let missing = try await client.request("GET", "/v1/legs")
            #expect(missing.status == 401 && missing.headers["www-authenticate"] == "Bearer")
            let wrong = ["Authorization": "Bearer s3cret-tokeN"]
            #expect(try await client.request("GET", "/v1/legs", headers: wrong).status == 401)
            #expect(try await client.request("GET", "/healthz").status == 200)
        }
    }

    @Test(
        "a leg in-process: RTP in, typed, signed, schema-valid events out, leg.end at DELETE, counters in the API"
    )
    func legEndToEnd() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port)
        let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 3, into: s.directory.url)
        try await s.run { client in
            let created = try await client.request(
                "POST", "/v1/legs", body: #"{"call_id":"in-process","role":"customer","codec":"pcmu"}"#)
            #expect(created.status == 201)
            let legID = try #require(created.json["leg_id"] as? String)
            let port = try #require((created.json["rtp"] as? [String: Any])?["port"] as? Int)
            let frames = try PayloadFrames(try AudioInput.load(clip), codec: .pcmu)
            let report = try RTPFileSender(
                frames: frames, destination: try UDPEndpoint(host: "127.0.0.1", port: UInt16(port)),
                impairments: Impairments(loss: 0.05), fast: true, seed: 7
            ).run()
            #expect(report.dropped > 0)
            #expect(await receiver.wait(seconds: 10) { $0.filter(\.isEmotion).count >= 4 })
            let during = try await client.request("GET", "/v1/calls/in-process?format=text&field=legs")
            #expect(during.body == "1")
            let leg = try await client.request("GET", "/v1/legs/\(legID)").json
            #expect(leg["state"] as? String == "active" && leg["codec"] as? String == "pcmu")
            #expect(try await client.request("DELETE", "/v1/legs/\(legID)").status == 200)
            #expect(await receiver.wait(seconds: 10) { $0.contains(where: \.isLegEnd) })
            let events = receiver.events.filter { $0.legID == legID }
            #expect(events.first?.legStart?.codec == .pcmu)
            #expect(events.first?.legStart?.port == port)
            let end = try #require(events.last?.legEnd)
            #expect(end.reason == "api")
            // The last packet's loss is invisible to any receiver; every other one is counted.
            #expect(abs(Int(end.rtp.lost) - report.dropped) <= 1, "lost \(end.rtp.lost), dropped \(report.dropped)")
            #expect(end.rtp.received == UInt64(report.sent))
            #expect(end.summary.mediaSeconds > 6)
        }
        #expect(receiver.undecodable.isEmpty, "\(receiver.undecodable)")
        let signer = EventSigner(key: s.hmacKey)
        #expect(receiver.received.allSatisfy(signer.verify))
        let sequences = receiver.events.map(\.sequence)
        #expect(sequences == sequences.sorted() && Set(sequences).count == sequences.count)
        let (valid, report) = try validateAgainstSchema(s.logPath)
        #expect(valid, "\(report)")
    }
}
