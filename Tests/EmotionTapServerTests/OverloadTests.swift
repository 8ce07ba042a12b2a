import EmotionCore
import EmotionMedia
import EmotionTestSupport
import Foundation
import Logging
import Testing

@testable import EmotionTapServer

@Suite("overload: worker load, admission control, degraded health")
struct OverloadTests {
    @Test("a worker's busy share is the work over the wall time, reported once a second")
    func workerLoad() {
        var load = WorkerLoad(since: 100)
        #expect(load.record(busy: 0.2, at: 100.5) == nil)
        load.note(delay: 0.04)
        load.note(delay: 0.25)
        load.note(delay: 0.01)
        let first = load.record(busy: 0.1, at: 101.0)
        #expect(first?.0 == 300 && first?.1 == 0.25)  // 0.3 s of work in 1 s; the oldest read 250 ms late
        #expect(load.record(busy: 2.0, at: 102.0)?.0 == 1000)  // capped
        let idle = load.record(busy: 0, at: 103.5)
        #expect(idle?.0 == 0 && idle?.1 == 0)  // the backlog is the last second's, not the worst ever
    }

    @Test(
        "audio read later than rtp.max_delay_ms is dropped unanalysed: counted as queue_overflow, not lost, never concealed; fresh audio is analysed"
    )
    func staleAudioIsShed() throws {
        let publisher = try EventPublisher(
            targets: [], hmacKey: nil, logPath: nil, logMaxBytes: 0, logKeep: 0, logger: Logger(label: "test"))
        let inbox = try StreamInbox(source: SourceAddress(ipv4: 0x7f00_0001, port: 4000), listenerPort: 0)
        let leg = try LiveLeg(
            identity: LegIdentity(callID: "c", legID: "l", role: "customer"), media: inbox,
            payloadTypes: PayloadTypes(requestedCodec: .pcmu), model: try EmotionModel.builtIn(),
            policy: LegPolicy(), sourcePolicy: SourcePolicy(), publisher: publisher, maxDelaySeconds: 2)
        let frame = [UInt8](repeating: 0x55, count: 160)  // 20 ms of PCMU
        let now = 1_000_000.0
        func push(_ count: Int, arrival: Double) {
            frame.withUnsafeBytes { bytes in
                for _ in 0..<count { inbox.push(bytes, payloadType: 0, samples: 160, arrival: arrival) }
            }
        }
        // 3 s of audio that waited 5 s (a stalled worker), then 1 s that waited 10 ms.
        push(150, arrival: now - 5)
        let stale = leg.drain(now: now)
        #expect(stale.shedSamples == 150 * 160)
        #expect(stale.oldestDelay == 5)
        push(50, arrival: now - 0.01)
        let fresh = leg.drain(now: now)
        #expect(fresh.shedSamples == 0)
        let rtp = leg.reception
        #expect(rtp.queueOverflow == 150)
        #expect(rtp.packets == 200 && rtp.received == 200 && rtp.lost == 0)
        #expect(rtp.concealedMilliseconds == 0)
        // Only the fresh second went through the analysis; the leg's clock counts the skipped 3 s too.
        #expect(leg.pipeline.shedSamples == 150 * 160)
        #expect(abs(leg.pipeline.mediaSeconds - 4) < 0.05)
    }

    @Test("at the mark, POST /v1/legs answers 503 with the reason, /healthz says degraded, and the refusal is counted")
    func admission() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        // A mark of 0 is always reached: every new leg is refused.
        let s = try InProcessService(eventPort: receiver.port) { c in c.maxWorkerBusy = 0 }
        try await s.run { client in
            let refused = try await client.request("POST", "/v1/legs", body: #"{"call_id":"c","role":"customer"}"#)
            #expect(refused.status == 503 && refused.errorMessage.contains("overloaded"))
            let health = try await client.request("GET", "/healthz")
            #expect(health.status == 503 && health.json["status"] as? String == "degraded")
            #expect(
                try await client.request("GET", "/metrics").body.contains(
                    #"emotiontap_legs_refused_total{reason="overload"} 1"#))
        }
        // The backlog mark: 0 is always reached too.
        let backlogged = try InProcessService(eventPort: receiver.port) { c in c.maxBacklogMilliseconds = 0 }
        try await backlogged.run { client in
            let refused = try await client.request("POST", "/v1/legs", body: #"{"call_id":"c","role":"customer"}"#)
            #expect(refused.status == 503 && refused.errorMessage.contains("reading audio"))
            let health = try await client.request("GET", "/healthz")
            #expect(health.status == 503 && (health.json["reason"] as? String ?? "").contains("late"))
            #expect(health.json["worker_backlog_ms"] as? Int == 0)
        }
        let ok = try InProcessService(eventPort: receiver.port)
        try await ok.run { client in
            let health = try await client.request("GET", "/healthz")
            #expect(health.status == 200 && health.json["status"] as? String == "ok")
            #expect((health.json["worker_busy"] as? Double ?? 1) < 0.5)
            #expect(
                try await client.request("POST", "/v1/legs", body: #"{"call_id":"c","role":"customer"}"#).status == 201)
        }
    }
}
