import EmotionMedia
import EmotionORTP
import EmotionUDP
import Foundation
import Testing

@Suite("oRTP receive session")
struct ReceiveSessionTests {
    /// A PCMU leg's session on a random loopback port, and a socket to send it datagrams.
    static func loopbackLeg() throws -> (RTPReceiveSession, UDPSocket, UDPEndpoint) {
        let port = 32000 + Int.random(in: 0..<2000) * 2
        let session = try RTPReceiveSession(
            host: "127.0.0.1", port: port, payloadTypes: PayloadTypes(requestedCodec: .pcmu))
        return (session, try UDPSocket(), try UDPEndpoint(host: "127.0.0.1", port: UInt16(port)))
    }

    @Test("datagrams on the leg's port come out as packet values in order, bad ones counted")
    func drain() throws {
        let (session, sender, to) = try Self.loopbackLeg()
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
        #expect(session.port == Int(to.port))
    }

    @Test("a new SSRC numbered below the old stream is followed after 3 packets, not dropped as old")
    func ssrcChange() throws {
        let (session, sender, to) = try Self.loopbackLeg()
        let payload = [UInt8](repeating: 0xFF, count: 160)
        var seen: [(UInt32, UInt16)] = []
        func send(ssrc: UInt32, sequences: ClosedRange<UInt16>, timestampBase: UInt32) {
            for seq in sequences {
                sender.send(
                    RTPHeader.packet(
                        payloadType: 0, marker: false, sequence: seq,
                        timestamp: timestampBase &+ UInt32(seq - sequences.lowerBound) * 160, ssrc: ssrc,
                        payload: payload), to: to)
                Thread.sleep(forTimeInterval: 0.002)
                session.drain { seen.append(($0.ssrc, $0.sequenceNumber)) }
            }
        }
        send(ssrc: 0xAAAA, sequences: 100...119, timestampBase: 16000)
        // The new source numbers from lower sequence numbers and an unrelated timestamp.
        send(ssrc: 0xBBBB, sequences: 40...59, timestampBase: 9_000_000)
        let deadline = Date().addingTimeInterval(1)
        while seen.count < 40, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            session.drain { seen.append(($0.ssrc, $0.sequenceNumber)) }
        }
        #expect(seen.filter { $0.0 == 0xAAAA }.map(\.1) == Array(100...119))
        // oRTP holds a new SSRC on probation for 3 packets (one stray packet must not switch a leg); after
        // that its whole stream comes through. Without the resync on the switch, none of it did: its
        // numbers were below the old stream's, so oRTP took every packet for an old one.
        #expect(seen.filter { $0.0 == 0xBBBB }.map(\.1) == Array(43...59), "\(seen.filter { $0.0 == 0xBBBB })")
    }

    @Test("a port already bound is refused with a reason")
    func portInUse() throws {
        let holder = try UDPSocket(bindingTo: try UDPEndpoint(host: "127.0.0.1", port: 0))
        #expect(throws: RTPSessionError.self) { try RTPReceiveSession(host: "127.0.0.1", port: Int(holder.localPort)) }
    }
}
