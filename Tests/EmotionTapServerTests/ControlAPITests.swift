import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionTapServer
import EmotionTestSupport
import EmotionTraffic
import EmotionUDP
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// The real service built in-process (EmotionTapService, as `serve` builds it), its API driven
/// through HummingbirdTesting, RTP from the project's sender and events on a real UDP socket.
struct InProcessService {
    let service: EmotionTapService
    let directory: TemporaryDirectory
    let hmacKey = "in-process-\(UUID().uuidString)"

    init(eventPort: Int, rtpPortCount: Int = 20, token: String? = nil) throws {
        directory = try TemporaryDirectory()
        var config = ServerConfig()
        // A random RTP range per test, so parallel tests never collide.
        let base = 30000 + Int.random(in: 0..<400) * 20
        config.rtpPorts = base...(base + rtpPortCount - 1)
        config.eventTargets = ["127.0.0.1:\(eventPort)"]
        config.eventLogPath = directory.url.appendingPathComponent("events.jsonl").path
        config.hmacKey = hmacKey
        config.authToken = token
        config.heartbeatSeconds = 1
        service = try EmotionTapService(
            config: config, model: try EmotionModel.builtIn(), logger: Logger(label: "test"))
    }

    var logPath: URL { URL(fileURLWithPath: service.config.eventLogPath!) }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:] }
    var errorMessage: String { (json["error"] as? [String: Any])?["message"] as? String ?? "" }
}

@Suite("control API, in-process", .serialized)
struct ControlAPITests {
    @Test("errors are JSON with a message and the right status, and nothing changes")
    func errors() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port, rtpPortCount: 2)
        try await s.service.buildApplication().test(.router) { client in
            func post(_ body: String) async throws -> TestResponse {
                try await client.execute(uri: "/v1/legs", method: .post, body: ByteBuffer(string: body))
            }
            #expect(try await client.execute(uri: "/v1/legs/leg-nope", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/v1/legs/leg-nope", method: .delete).status == .notFound)
            #expect(try await client.execute(uri: "/v1/calls/none", method: .get).status == .notFound)
            #expect(try await post("{not json").status == .badRequest)
            #expect(try await post("[1,2]").status == .badRequest)
            #expect(try await post(#"{"call_id": 5, "role": "customer"}"#).status == .badRequest)
            let unknown = try await post(#"{"call_id": "a", "role": "customer", "colour": 1}"#)
            #expect(unknown.status == .badRequest && unknown.errorMessage.contains("colour"))
            #expect((unknown.json["error"] as? [String: Any])?["status"] as? Int == 400)
            #expect(try await post(#"{"call_id": "a b;rm", "role": "customer"}"#).status == .badRequest)
            #expect(try await post(#"{"call_id": "a", "role": "customer", "codec": "g729"}"#).status == .badRequest)
            #expect(try await post(#"{"call_id": "a", "role": "customer", "port": 80}"#).status == .badRequest)
            let huge = "{\"call_id\": \"" + String(repeating: "x", count: 40000) + "\", \"role\": \"c\"}"
            #expect(try await post(huge).status == .contentTooLarge)
            #expect((try await client.execute(uri: "/v1/legs", method: .get).json["legs"] as? [Any])?.isEmpty == true)

            // Two ports: the third leg gets 503, an explicit port in use 409, existing legs unaffected.
            let first = try await post(#"{"call_id": "a", "role": "customer"}"#)
            #expect(first.status == .created)
            let firstID = try #require(first.json["leg_id"] as? String)
            let firstPort = try #require((first.json["rtp"] as? [String: Any])?["port"] as? Int)
            #expect(try await post(#"{"call_id": "a", "role": "agent"}"#).status == .created)
            let full = try await post(#"{"call_id": "a", "role": "x"}"#)
            #expect(full.status == .serviceUnavailable && full.errorMessage.contains("no free RTP port"))
            #expect(try await post("{\"call_id\": \"a\", \"role\": \"x\", \"port\": \(firstPort)}").status == .conflict)
            let leg = try await client.execute(uri: "/v1/legs/\(firstID)", method: .get)
            #expect(leg.status == .ok && leg.json["state"] as? String == "waiting")
            #expect(Set(((leg.json["rtp"] as? [String: Any]) ?? [:]).keys) == Set(RTPTotals.fields.map(\.name)))
            #expect(
                try await client.execute(uri: "/metrics", method: .get).text.contains("emotiontap_legs_created_total 2")
            )
        }
    }

    @Test("a bearer token, when configured, is required (and /healthz stays open)")
    func bearerToken() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port, token: "s3cret-token")
        try await s.service.buildApplication().test(.router) { client in
            #expect(
                try await client.execute(
                    uri: "/v1/legs", method: .get, headers: [.authorization: "Bearer s3cret-token"]
                ).status == .ok)
            let missing = try await client.execute(uri: "/v1/legs", method: .get)
            #expect(missing.status == .unauthorized && missing.headers[.wwwAuthenticate] == "Bearer")
            #expect(
                try await client.execute(
                    uri: "/v1/legs", method: .get, headers: [.authorization: "Bearer s3cret-tokeN"]
                ).status == .unauthorized)
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }

    @Test(
        "a leg end to end in-process: RTP in, typed, signed, schema-valid events out, leg.end at DELETE and counters in the API"
    )
    func legEndToEnd() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port)
        let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 3, into: s.directory.url)
        try await s.service.buildApplication().test(.router) { client in
            let created = try await client.execute(
                uri: "/v1/legs", method: .post,
                body: ByteBuffer(string: #"{"call_id":"in-process","role":"customer","codec":"pcmu"}"#))
            #expect(created.status == .created)
            let legID = try #require(created.json["leg_id"] as? String)
            let port = try #require((created.json["rtp"] as? [String: Any])?["port"] as? Int)
            let frames = try PayloadFrames(try AudioInput.load(clip), codec: .pcmu)
            let report = try RTPFileSender(
                frames: frames, destination: try UDPEndpoint(host: "127.0.0.1", port: UInt16(port)),
                impairments: Impairments(loss: 0.05), fast: true, seed: 7
            ).run()
            #expect(report.dropped > 0)
            #expect(receiver.wait(seconds: 10) { $0.filter(\.isEmotion).count >= 4 })
            let during = try await client.execute(uri: "/v1/calls/in-process?format=text&field=legs", method: .get)
            #expect(during.text == "1")
            let leg = try await client.execute(uri: "/v1/legs/\(legID)", method: .get).json
            #expect(leg["state"] as? String == "active" && leg["codec"] as? String == "pcmu")
            #expect(try await client.execute(uri: "/v1/legs/\(legID)", method: .delete).status == .ok)
            #expect(receiver.wait(seconds: 10) { $0.contains(where: \.isLegEnd) })
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
