import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionTestSupport
import EmotionTraffic
import EmotionUDP
import Foundation
import Testing

@testable import EmotionTapServer

@Suite("the worker's read schedule: full passes every read interval, windows read promptly")
struct ReadScheduleTests {
    @Test("a new leg is hot for a second; packets faster than 200 a second make a leg hot again")
    func burstRule() {
        var schedule = LegReadSchedule()
        schedule.startHot(at: 100)
        #expect(schedule.isHot(at: 100.9) && !schedule.isHot(at: 101.1))
        schedule.noteRead(datagrams: 5, at: 101.2)  // 5 packets in 1.2 s: paced
        #expect(!schedule.isHot(at: 101.2))
        schedule.noteRead(datagrams: 5, at: 101.3)  // 50 a second
        #expect(!schedule.isHot(at: 101.3))
        schedule.noteRead(datagrams: 40, at: 101.4)  // 400 a second
        #expect(schedule.isHot(at: 102.3) && !schedule.isHot(at: 102.5))
        schedule.noteRead(datagrams: 3, at: 101.401)  // 3 within a tick: counted over the tick, 300 a second
        #expect(schedule.isHot(at: 102.4))
    }

    @Test("with a 500 ms read interval a window's verdict still leaves within a few ticks of its last packet")
    func windowsAreReadPromptly() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port) { c in c.readIntervalMilliseconds = 500 }
        let clip = try Fixtures.repeated("crema-1009_DFA_ANG_XX.wav", times: 3, into: s.directory.url)
        let frames = try PayloadFrames(try AudioInput.load(clip), codec: .pcmu)
        try await s.run { client in
            let created = try await client.request(
                "POST", "/v1/legs", body: #"{"call_id":"schedule","role":"customer","codec":"pcmu"}"#)
            let legID = try #require(created.json["leg_id"] as? String)
            let port = try #require((created.json["rtp"] as? [String: Any])?["port"] as? Int)
            let destination = try UDPEndpoint(host: "127.0.0.1", port: UInt16(port))
            // Real-time pace: packet k leaves at about `sentAt + 20k ms`.
            let sentAt = Date().timeIntervalSince1970
            _ = try await onThread { try RTPFileSender(frames: frames, destination: destination).run() }
            #expect(await receiver.wait(seconds: 10) { $0.filter { $0.legID == legID && $0.isEmotion }.count >= 4 })
            _ = try await client.request("DELETE", "/v1/legs/\(legID)")
            // Live windows only: those whose audio had all been sent before the leg was ended.
            let latencies = receiver.timedEvents.compactMap { timed -> Double? in
                guard timed.event.legID == legID, let reading = timed.event.emotion?.reading else { return nil }
                let lastPacketSent = sentAt + reading.end - 0.02
                return timed.arrival - lastPacketSent
            }.sorted()
            try #require(latencies.count >= 4, "\(latencies)")
            // Read only by full passes, a window would wait 250 ms on average for its last packet.
            let median = latencies[latencies.count / 2]
            #expect(median < 0.15, "window latencies \(latencies)")
        }
    }

    @Test(
        "a leg read every second and sent a file 10 times faster than real time for 4 s loses nothing at the socket"
    )
    func burstsAreReadEveryTick() async throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let s = try InProcessService(eventPort: receiver.port) { c in c.readIntervalMilliseconds = 1000 }
        try await s.run { client in
            let created = try await client.request(
                "POST", "/v1/legs",
                body: #"{"call_id":"burst","role":"customer","codec":"l16-16000","payload_type":98}"#)
            let legID = try #require(created.json["leg_id"] as? String)
            let port = try #require((created.json["rtp"] as? [String: Any])?["port"] as? Int)
            let destination = try UDPEndpoint(host: "127.0.0.1", port: UInt16(port))
            // 40 s of 16 kHz L16 in about 4 s (read every second, five times the default interval, so that
            // the burst would overflow the socket between passes): a second of it is 500 datagrams, about 1.5
            // times what the leg's socket buffer (512 kB) holds, so full passes alone lose packets. A new
            // leg is read every tick for its first second; the burst rule keeps it so for the three after.
            // Read every tick, the leg loses none unless its worker is kept from running for about 0.7 s
            // (at 20 times and 500 ms, a 0.35 s stall on a box running five busy processes lost some).
            let sent = try await onThread { () throws -> Int in
                let socket = try UDPSocket()
                let payload = [UInt8](repeating: 0x10, count: 640)
                var sent = 0
                for i in 0..<2000 {
                    let packet = RTPHeader.packet(
                        payloadType: 98, marker: i == 0, sequence: UInt16(i), timestamp: UInt32(i * 320), ssrc: 7,
                        payload: payload)
                    if socket.send(packet, to: destination) { sent += 1 }
                    if i % 10 == 9 { usleep(20_000) }
                }
                return sent
            }
            try await Task.sleep(for: .milliseconds(500))
            _ = try await client.request("DELETE", "/v1/legs/\(legID)")
            let end = try #require(await receiver.ended(legID))
            #expect(sent == 2000)
            #expect(end.rtp.received == 2000 && end.rtp.lost == 0, "\(end.rtp)")
        }
    }
}
