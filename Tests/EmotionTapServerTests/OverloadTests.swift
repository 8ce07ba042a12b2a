import EmotionTestSupport
import Foundation
import Testing

@testable import EmotionTapServer

@Suite("overload: worker load, admission control, degraded health")
struct OverloadTests {
    @Test("a worker's busy share is the work over the wall time, reported once a second")
    func workerLoad() {
        var load = WorkerLoad(since: 100)
        #expect(load.record(busy: 0.2, at: 100.5) == nil)
        #expect(load.record(busy: 0.1, at: 101.0) == 300)  // 0.3 s of work in 1 s
        #expect(load.record(busy: 2.0, at: 102.0) == 1000)  // capped
        #expect(load.record(busy: 0, at: 103.5) == 0)
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
