import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionTapServer
import EmotionTestSupport
import Foundation
import Logging
import Testing

/// The publisher's live subscribers (what `GET /v1/events/stream` reads), in-process.
@Suite("event publisher subscribers, in-process", .serialized)
struct EventPublisherStreamTests {
    static let a = LegIdentity(callID: "call-a", legID: "leg-a", role: "customer")
    static let b = LegIdentity(callID: "call-b", legID: "leg-b", role: "agent")

    static func events(_ stream: AsyncStream<LiveEvent>) async -> [PublishedEvent] {
        var got: [PublishedEvent] = []
        for await item in stream { if case .event(let e) = item { got.append(e) } }
        return got
    }

    @Test(
        "a subscriber gets each event published while it is subscribed, in seq order, as the datagram's text; filters keep a call's or a type's"
    )
    func fanOut() async throws {
        let publisher = try EventPublisher(
            targets: [], hmacKey: "k", logPath: nil, logMaxBytes: 0, logKeep: 0, logger: Logger(label: "test"))
        publisher.publish(.heartbeat(Heartbeat(legs: 0)), leg: nil)
        let all = publisher.subscribe()
        let oneCall = publisher.subscribe(EventFilter(callID: "call-a"))
        let states = publisher.subscribe(EventFilter(types: ["state", "escalate"]))
        #expect(publisher.subscriberCount == 3)
        let change = Event.Body.state(StateChange(from: .calm, to: .upset, mediaSeconds: 4))
        let texts = [
            publisher.publish(change, leg: Self.a), publisher.publish(.heartbeat(Heartbeat(legs: 2)), leg: nil),
            publisher.publish(change, leg: Self.b),
        ]
        publisher.keepAlive(all.id)
        for s in [all, oneCall, states] { publisher.unsubscribe(s.id) }
        publisher.publish(change, leg: Self.a)
        #expect(publisher.subscriberCount == 0)

        let got = await Self.events(all.events)
        #expect(got.map(\.text) == texts)
        #expect(got.map(\.sequence) == [2, 3, 4])
        #expect(got.map(\.type) == ["state", "heartbeat", "state"])
        #expect(await Self.events(oneCall.events).map(\.text) == [texts[0]])
        #expect(await Self.events(states.events).map(\.text) == [texts[0], texts[2]])
        #expect(EventFilter(callID: "call-a").passes(type: "heartbeat", callID: nil) == false)
    }

    @Test(
        "a subscriber that never reads keeps the newest events and loses the oldest, counted; publish does not wait for it"
    )
    func stuckSubscriber() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port, rtpPortCount: 4)
        let publisher = s.service.publisher
        try await s.run { client in
            let stuck = publisher.subscribe(buffer: 5)
            let started = Date()
            var last = ""
            for i in 0..<2000 { last = publisher.publish(.heartbeat(Heartbeat(legs: i)), leg: nil) }
            // 2000 events through the log and UDP: well under this in a debug build.
            #expect(Date().timeIntervalSince(started) < 10)
            let metrics = try await client.request("GET", "/metrics").body
            func value(_ name: String) -> Double? {
                metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }
                    .flatMap { Double($0.split(separator: " ")[1]) }
            }
            #expect(value("emotiontap_event_stream_clients") == 1)
            #expect((value("emotiontap_event_stream_dropped_total") ?? 0) >= 1995)
            publisher.unsubscribe(stuck.id)
            let kept = await Self.events(stuck.events)
            #expect(kept.count == 5)
            // The service's own heartbeats may have come after ours.
            #expect(kept.contains { $0.text == last } || kept.allSatisfy { $0.type == "heartbeat" })
            #expect(kept.map(\.sequence) == kept.map(\.sequence).sorted())
            let after = try await client.request("GET", "/metrics").body
            #expect(after.contains("emotiontap_event_stream_clients 0"))
        }
    }
}
