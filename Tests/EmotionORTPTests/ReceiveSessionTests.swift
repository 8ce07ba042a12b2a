import EmotionMedia
import EmotionORTP
import EmotionUDP
import Foundation
import Testing

@Suite("oRTP receive session")
struct ReceiveSessionTests {
    @Test("datagrams on the leg's port come out as packet values in order, bad ones counted")
    func drain() throws {
        let port = 32000 + Int.random(in: 0..<2000) * 2
        let session = try RTPReceiveSession(
            host: "127.0.0.1", port: port, payloadTypes: PayloadTypes(requestedCodec: .pcmu))
        let sender = try UDPSocket()
        let to = try UDPEndpoint(host: "127.0.0.1", port: UInt16(port))
        let payload = [UInt8](repeating: 0xFF, count: 160)
        for seq: UInt16 in [10, 12, 11] {
            sender.send(
                RTPHeader.packet(
                    payloadType: 0, marker: seq == 10, sequence: seq, timestamp: UInt32(seq) * 160, ssrc: 0xABCD,
                    payload: payload), to: to)
        }
        // An extension that overruns the datagram: oRTP passes it on, the session's own check drops it.
        var overrun = RTPHeader.packet(
            payloadType: 0, marker: false, sequence: 13, timestamp: 13 * 160, ssrc: 0xABCD,
            payload: [0xBE, 0xDE, 0xFF, 0xFF])
        overrun[0] |= 0x10
        sender.send(overrun, to: to)
        var seen: [(UInt16, Int, String?)] = []
        let deadline = Date().addingTimeInterval(2)
        while seen.count < 3, Date() < deadline {
            session.drain { seen.append(($0.sequenceNumber, $0.payload.count, $0.source.text)) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(seen.map(\.0) == [10, 11, 12], "sorted by sequence number per read")
        #expect(seen.allSatisfy { $0.1 == 160 })
        #expect(seen.first?.2?.hasPrefix("127.0.0.1:") == true)
        #expect(session.malformed == 1)
        #expect(session.port == port)
    }

    @Test("a port already bound is refused with a reason")
    func portInUse() throws {
        let holder = try UDPSocket(bindingTo: try UDPEndpoint(host: "127.0.0.1", port: 0))
        #expect(throws: RTPSessionError.self) { try RTPReceiveSession(host: "127.0.0.1", port: Int(holder.localPort)) }
    }
}
