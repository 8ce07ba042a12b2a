import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionTestSupport
import Foundation
import Testing

/// One of each event, with every optional field both set and unset across the list.
enum SampleEvents {
    static let leg = LegIdentity(callID: "call-1", legID: "leg-abc", role: "customer")

    static var all: [Event] {
        var rtp = RTPTotals()
        rtp.packets = 1309
        rtp.received = 1300
        rtp.expected = 1309
        rtp.lost = 9
        rtp.jitterMilliseconds = 1.25
        rtp.malformed = 3
        let summary = LegSummary(
            durationSeconds: 26.2, mediaSeconds: 26.18, speechSeconds: 17.8, upsetFraction: 0.37, peakUpset: 0.99,
            emotionMix: [0.3, 0.05, 0.02, 0.1, 0.4, 0.1, 0.03], startUpset: 0.2, endUpset: nil, endedCalmer: nil,
            escalations: 1)
        let reading = EmotionReading(
            start: 9, end: 12, speech: 0.833, upset: 0.7123, label: .angry,
            scores: [0.5, 0.1, 0.05, 0.05, 0.2, 0.05, 0.05])
        let bodies: [Event.Body] = [
            .legStart(
                LegStart(codec: .opus, payloadType: 111, ssrc: 4_000_000_000, source: "127.0.0.1:5004", port: 40002)),
            .legStart(LegStart(codec: .pcmu, payloadType: 0, ssrc: 1, source: nil, port: 40003)),
            .emotion(EmotionEvent(reading: reading, state: .upset)),
            .state(StateChange(from: .calm, to: .upset, mediaSeconds: 12.004)),
            .escalate(Escalation(upsetSeconds: 20.04, withinSeconds: 60)),
            .legEnd(LegEnd(reason: "timeout", summary: summary, rtp: rtp)),
        ]
        return bodies.enumerated().map {
            Event(sequence: Int64($0.offset + 1), timestamp: "2026-12-01T23:15:41.123Z", leg: leg, body: $0.element)
        }
            + [
                Event(
                    sequence: 7, timestamp: "2026-12-01T23:15:42.000Z", leg: nil, body: .heartbeat(Heartbeat(legs: 2)))
            ]
    }
}

@Suite("event protocol")
struct EventTests {
    @Test("every event type encodes with the header first and decodes back to the same value")
    func roundTrip() throws {
        for event in SampleEvents.all {
            let text = event.serialized()
            #expect(text.hasPrefix("{\"v\":1,\"type\":\"\(event.type)\",\"seq\":\(event.sequence),\"ts\":\""))
            let decoded = try Event(decoding: text)
            #expect(decoded == event, "\(text)")
            #expect(text.utf8.count <= Event.maxDatagram)
        }
    }

    @Test("the emotion event writes its fields in the documented order")
    func emotionFieldOrder() throws {
        let text = SampleEvents.all[2].serialized()
        let keys = ["\"start\"", "\"end\"", "\"speech\"", "\"upset\"", "\"state\"", "\"label\"", "\"scores\""]
        let positions = keys.map { text.range(of: $0)!.lowerBound }
        #expect(positions == positions.sorted(), "\(text)")
    }

    @Test("leg.end carries every counter of the table, by name")
    func legEndCounters() throws {
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(SampleEvents.all[5].serialized().utf8)) as? [String: Any])
        let rtp = try #require(object["rtp"] as? [String: Any])
        #expect(Set(rtp.keys) == Set(RTPTotals.fields.map(\.name)))
        #expect(rtp["lost"] as? Int == 9 && rtp["jitter_ms"] as? Double == 1.25)
    }

    @Test("signed events verify; a flipped byte, a stripped or a foreign signature do not")
    func signatures() throws {
        let signer = EventSigner(key: "k1")
        for event in SampleEvents.all {
            let signed = signer.sign(event.serialized())
            #expect(signer.verify(signed))
            #expect(try Event(decoding: signed).signature?.count == 64)
            #expect(!EventSigner(key: "k2").verify(signed))
            var bytes = Array(signed.utf8)
            bytes[20] ^= 0x01
            #expect(!signer.verify(String(decoding: bytes, as: UTF8.self)))
            #expect(!signer.verify(event.serialized()))
        }
    }

    @Test("what is not an event is refused with the field named")
    func badEvents() {
        let cases: [(String, String)] = [
            ("not json", "not JSON"),
            ("[1]", "not a JSON object"),
            ("{\"v\":2,\"type\":\"heartbeat\",\"seq\":1,\"ts\":\"x\",\"legs\":1}", "v"),
            (
                "{\"v\":1,\"type\":\"party\",\"seq\":1,\"ts\":\"x\",\"call_id\":\"c\",\"leg_id\":\"l\",\"role\":\"r\"}",
                "type"
            ),
            (
                #"{"v":1,"type":"state","seq":1,"ts":"x","call_id":"c","leg_id":"l","role":"r","from":"calm","#
                    + #""to":"angry","media_s":1}"#,
                "to"
            ),
            ("{\"v\":1,\"type\":\"heartbeat\",\"seq\":true,\"ts\":\"x\",\"legs\":1}", "seq"),
        ]
        for (text, field) in cases {
            #expect(throws: EventDecodingError.self) { try Event(decoding: text) }
            do { _ = try Event(decoding: text) } catch { #expect(error.description.hasPrefix(field), "\(error)") }
        }
    }

    @Test("the events are valid against config/event-schema.json")
    func schema() throws {
        let dir = try TemporaryDirectory()
        let signer = EventSigner(key: "schema")
        let lines = SampleEvents.all.map { signer.sign($0.serialized()) }.joined(separator: "\n") + "\n"
        let file = try dir.write("events.jsonl", Array(lines.utf8))
        let (valid, report) = try validateAgainstSchema(file)
        #expect(valid, "\(report)")
    }

    @Test("an analyze line and a live emotion event share the window fields")
    func readingIsShared() throws {
        let reading = EmotionReading(start: 0, end: 3, speech: 0.5, upset: nil, label: nil, scores: nil)
        let line = JSON.object(reading.fields(file: "a.wav")).serialized
        #expect(
            line
                == #"{"file":"a.wav","start":0,"end":3,"speech":0.5,"upset":null,"label":null,"scores":null}"#
        )
        #expect(try EmotionReading(decoding: line) == reading)
    }
}

@Suite("leg requests")
struct LegRequestTests {
    @Test("a POST /v1/legs body is checked field by field")
    func parse() throws {
        let parsed = try LegRequest.parse(Data(#"{"call_id":"c1","role":"agent","codec":"OPUS","port":40002}"#.utf8))
            .get()
        #expect(
            parsed
                == LegRequest(callID: "c1", role: "agent", codec: .opus, port: 40002))
        let wide = try LegRequest.parse(Data(#"{"call_id":"c","role":"a","codec":"l16-16000","payload_type":98}"#.utf8))
            .get()
        #expect(wide == LegRequest(callID: "c", role: "a", codec: .l16Wide, payloadType: 98))
        #expect(try LegRequest.parse(Data(#"{"call_id":"c","role":"a","codec":"g722"}"#.utf8)).get().codec == .g722)
        let bad: [(String, String)] = [
            ("{", "not valid JSON"), ("[]", "JSON object"), (#"{"role":"a"}"#, "call_id"),
            (#"{"call_id":"c","role":"a","port":true}"#, "port"), (#"{"call_id":"c","role":"a","port":1.5}"#, "port"),
            (#"{"call_id":"c","role":"a","codec":"g729"}"#, "codec must be one of \"pcmu\", \"pcma\", \"g722\""),
            (#"{"call_id":"c","role":"a","codec":"opus","payload_type":8}"#, "96-127"),
            (#"{"call_id":"c","role":"a","codec":"pcmu","payload_type":98}"#, "without a static type"),
            (#"{"call_id":"c","role":"a","x":1}"#, "unknown field 'x'"),
        ]
        for (body, words) in bad {
            guard case .failure(let problem) = LegRequest.parse(Data(body.utf8)) else {
                Issue.record("\(body) was accepted")
                continue
            }
            #expect(problem.description.contains(words), "\(body): \(problem)")
        }
        #expect(LegRequest.validIdentifier("call-1@pbx.example:5060"))
        #expect(
            !LegRequest.validIdentifier("a b") && !LegRequest.validIdentifier("")
                && !LegRequest.validIdentifier(String(repeating: "x", count: 129)))
    }
}
