import EmotionMedia
import EmotionORTP
import EmotionSRTP
import EmotionTestSupport
import EmotionUDP
import Foundation
import Testing

@Suite("oRTP receive session")
struct ReceiveSessionTests {
    /// A PCMU leg's session on a random loopback port, and a socket to send it datagrams.
    static func loopbackLeg() throws -> (RTPReceiveSession, UDPSocket, UDPEndpoint) {
        let port = TestPorts.one()
        let session = try RTPReceiveSession(
            host: "127.0.0.1", port: port, payloadTypes: PayloadTypes(requestedCodec: .pcmu))
        return (session, try UDPSocket(), try UDPEndpoint(host: "127.0.0.1", port: UInt16(port)))
    }

    /// An SRTP PCMU leg on a random loopback port (key made from `keySeed`), a socket to send it datagrams,
    /// and the sender's side of the key.
    static func srtpLoopbackLeg(keySeed: UInt8) throws -> (RTPReceiveSession, UDPSocket, UDPEndpoint, SRTPSession) {
        let port = TestPorts.one()
        let key = SDESCrypto(suite: .aesCM128HMACSHA1_80, keySalt: (0..<30).map { UInt8($0) &* keySeed &+ 1 })
        let session = try RTPReceiveSession(
            host: "127.0.0.1", port: port, payloadTypes: PayloadTypes(requestedCodec: .pcmu), srtp: key)
        return (
            session, try UDPSocket(), try UDPEndpoint(host: "127.0.0.1", port: UInt16(port)),
            try SRTPSession(key, direction: .outbound)
        )
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

    @Test(
        "SRTP is checked before oRTP parses: forged packets (wrong tag, a new SSRC, numbers far ahead) are counted and leave the stream untouched"
    )
    func srtpBeforeParse() throws {
        let (session, sender, to, protector) = try Self.srtpLoopbackLeg(keySeed: 7)
        let payload = [UInt8](repeating: 0x55, count: 160)
        func packet(_ seq: UInt16, ssrc: UInt32) -> [UInt8] {
            RTPHeader.packet(
                payloadType: 0, marker: false, sequence: seq, timestamp: UInt32(seq) * 160, ssrc: ssrc, payload: payload
            )
        }
        var seen: [(UInt32, UInt16, [UInt8])] = []
        for seq: UInt16 in 100..<130 {
            sender.send(try #require(protector.protect(packet(seq, ssrc: 0x1111))), to: to)
            if seq % 3 == 0 {
                // Forged: plain RTP with a fake 10-byte tag, from another source and far ahead. Had oRTP
                // parsed it first, it would count towards an SSRC switch and its sequence state would jump.
                sender.send(packet(seq &+ 5000, ssrc: 0x2222) + [UInt8](repeating: 0xAB, count: 10), to: to)
            }
            Thread.sleep(forTimeInterval: 0.002)
            session.drain { seen.append(($0.ssrc, $0.sequenceNumber, Array($0.payload))) }
        }
        let deadline = Date().addingTimeInterval(1)
        while seen.count < 30, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            session.drain { seen.append(($0.ssrc, $0.sequenceNumber, Array($0.payload))) }
        }
        #expect(seen.map(\.1) == Array(100..<130), "every genuine packet, in order: \(seen.map(\.1))")
        #expect(seen.allSatisfy { $0.0 == 0x1111 && $0.2 == payload }, "decrypted, and only the genuine source")
        #expect(session.srtpAuthFailed == 10)
        #expect(session.libraryStatistics.packet_recv == 30, "oRTP never saw the forged datagrams")
        #expect(session.datagramsRead == 40, "the forged ones were read all the same (the burst rule counts them)")
    }

    @Test(
        "a backlog is read 16 datagrams per syscall, past an empty datagram, with the kernel's arrival times and the sender's address"
    )
    func batchedReads() throws {
        let (session, sender, to) = try Self.loopbackLeg()
        // The kernel turns receive timestamps on for the first socket that asks a moment later (from a
        // work queue); until then a datagram is stamped when it is read.
        Thread.sleep(forTimeInterval: 0.05)
        let payload = [UInt8](repeating: 0xFF, count: 160)
        let sentAt = Date().timeIntervalSince1970
        for seq: UInt16 in 0..<40 {
            sender.send(
                RTPHeader.packet(
                    payloadType: 0, marker: false, sequence: 500 + seq, timestamp: UInt32(seq) * 160, ssrc: 0xC0DE,
                    payload: payload), to: to)
            // An empty datagram ends oRTP's read of the socket: the drain must go on past it.
            if seq == 20 { sender.send([], to: to) }
        }
        Thread.sleep(forTimeInterval: 0.1)
        let drainedAt = Date().timeIntervalSince1970
        // A packet's payload and source point into oRTP's buffer: take what is needed inside the handler.
        var seen: [(sequenceNumber: UInt16, arrival: Double, source: String?)] = []
        session.drain { seen.append(($0.sequenceNumber, $0.arrival, $0.source.text)) }
        #expect(seen.map(\.sequenceNumber) == Array(500..<540), "every packet in one drain")
        // 41 datagrams: 16 + 16 + 9, the short third batch says the socket is empty (no read for EAGAIN);
        // then, after a backlog, one more read for what came while the handler worked (nothing here).
        #expect(session.socketReads == 4)
        // Arrival is when the kernel took the datagram (SO_TIMESTAMP), not when the drain read it.
        #expect(seen.allSatisfy { $0.arrival >= sentAt - 0.01 && $0.arrival < drainedAt - 0.05 })
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.arrival <= $1.arrival })
        #expect(seen.allSatisfy { $0.source == "127.0.0.1:\(sender.localPort)" })
        #expect(session.drain { _ in } == 0)
        #expect(session.socketReads == 5, "an idle drain costs one read")
    }

    @Test("packets that arrive while a drain works through a backlog are taken by the same drain")
    func backlogDrainReadsAgain() throws {
        let (session, sender, to) = try Self.loopbackLeg()
        let payload = [UInt8](repeating: 0xFF, count: 160)
        func send(_ sequences: Range<UInt16>) {
            for seq in sequences {
                sender.send(
                    RTPHeader.packet(
                        payloadType: 0, marker: false, sequence: seq, timestamp: UInt32(seq) * 160, ssrc: 0xF00D,
                        payload: payload), to: to)
            }
        }
        send(0..<30)
        Thread.sleep(forTimeInterval: 0.05)
        var seen: [UInt16] = []
        session.drain { packet in
            seen.append(packet.sequenceNumber)
            // A sender at full speed: more arrives while the leg analyses the first packets.
            if packet.sequenceNumber == 0 {
                send(30..<60)
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        #expect(seen == Array(0..<60))
    }

    @Test("forged SRTP datagrams inside a backlog cost the genuine packets behind them nothing: one drain takes all")
    func srtpBacklogInOneDrain() throws {
        let (session, sender, to, protector) = try Self.srtpLoopbackLeg(keySeed: 5)
        let payload = [UInt8](repeating: 0x55, count: 160)
        for seq: UInt16 in 0..<40 {
            let packet = RTPHeader.packet(
                payloadType: 0, marker: false, sequence: seq, timestamp: UInt32(seq) * 160, ssrc: 0x3333,
                payload: payload)
            sender.send(try #require(protector.protect(packet)), to: to)
            // Each forged datagram ends oRTP's read of the batch it sits in.
            if seq % 4 == 1 { sender.send(packet + [UInt8](repeating: 0xAB, count: 10), to: to) }
        }
        Thread.sleep(forTimeInterval: 0.05)
        var seen: [UInt16] = []
        session.drain { seen.append($0.sequenceNumber) }
        #expect(seen == Array(0..<40))
        #expect(session.srtpAuthFailed == 10)
    }

    @Test("a port already bound is refused with a reason")
    func portInUse() throws {
        let holder = try UDPSocket(bindingTo: try UDPEndpoint(host: "127.0.0.1", port: 0))
        #expect(throws: RTPSessionError.self) { try RTPReceiveSession(host: "127.0.0.1", port: Int(holder.localPort)) }
    }
}
