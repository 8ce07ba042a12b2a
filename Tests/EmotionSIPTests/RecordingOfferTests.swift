import EmotionCore
import EmotionMedia
import EmotionSIP
import Foundation
import Testing

@Suite("SIPREC offers")
struct RecordingOfferTests {
    static let sdp = """
        v=0
        o=SRC 2890844526 1 IN IP4 192.0.2.10
        s=SIPREC
        c=IN IP4 192.0.2.10
        t=0 0
        m=audio 30000 RTP/AVP 0 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:101 telephone-event/8000
        a=label:1
        a=sendonly
        m=audio 30002 RTP/AVP 111 98 9 110
        a=rtpmap:111 opus/48000/2
        a=rtpmap:110 telephone-event/48000
        a=fmtp:111 useinbandfec=1
        a=rtpmap:98 L16/16000
        a=rtpmap:9 G722/8000
        a=label:2
        a=sendonly
        m=audio 30004 RTP/SAVP 0
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
        a=label:3
        a=sendonly
        m=video 30006 RTP/AVP 96
        a=rtpmap:96 H264/90000
        m=audio 30008 RTP/AVP 18
        a=rtpmap:18 G729/8000
        a=label:5
        """

    /// The caller (listed first) sends label 2, the agent label 1: order would get it wrong.
    static let metadata = """
        <?xml version="1.0" encoding="UTF-8"?>
        <recording xmlns="urn:ietf:params:xml:ns:recording:1">
          <datamode>complete</datamode>
          <session session_id="hVpd7YQgRW2nD22h7q60JQ=="/>
          <participant participant_id="P-caller">
            <nameID aor="sip:+15551234567@carrier.example.net"><name>Caller</name></nameID>
          </participant>
          <participant participant_id="P-agent"><nameID aor="sip:2001@agents.example.com"/></participant>
          <stream stream_id="S1" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>1</label></stream>
          <stream stream_id="S2" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>2</label></stream>
          <participantstreamassoc participant_id="P-caller"><send>S2</send><recv>S1</recv></participantstreamassoc>
          <participantstreamassoc participant_id="P-agent"><send>S1</send><recv>S2</recv></participantstreamassoc>
        </recording>
        """

    static func crlf(_ s: String) -> String { s.replacingOccurrences(of: "\n", with: "\r\n") }

    static func multipart(_ parts: [(String, String)], boundary: String = "b-42") -> [UInt8] {
        var body = ""
        for (type, content) in parts { body += "--\(boundary)\nContent-Type: \(type)\n\n\(content)\n" }
        body += "--\(boundary)--\n"
        return Array(crlf(body).utf8)
    }

    @Test("a multipart INVITE: streams by label with their codecs, refusals with reasons, metadata mapped")
    func parse() throws {
        let body = Self.multipart([("application/sdp", Self.sdp), ("application/rs-metadata+xml", Self.metadata)])
        let offer = try RecordingOffer.parse(contentType: "multipart/mixed;boundary=b-42", body: body)
        #expect(offer.streams.count == 5)
        let s = offer.streams
        #expect(s[0].label == "1" && s[0].port == 30000 && s[0].rejection == nil && s[0].telephoneEvent == 101)
        #expect(s[0].codecs.map(\.codec) == [.pcmu])
        #expect(s[1].codecs.map(\.codec) == [.opus, .l16Wide, .g722])
        #expect(s[1].dynamicCodecs == [111: .opus, 98: .l16Wide])
        #expect(s[1].codecs.first?.fmtp == "useinbandfec=1")
        #expect(s[2].rejection == nil && s[2].crypto.count == 1, "SRTP with an SDES key is taken")
        #expect(s[2].srtp?.suite == .aesCM128HMACSHA1_80 && s[2].srtp?.keySalt.count == 30 && s[2].srtp?.tag == 1)
        #expect(s[3].rejection == "not audio")
        #expect(s[4].rejection == "no codec this service decodes")
        let m = try #require(offer.metadata)
        #expect(m.sessionID == "hVpd7YQgRW2nD22h7q60JQ==")
        #expect(m.sender(ofLabel: "1")?.aor == "sip:2001@agents.example.com")
        #expect(m.sender(ofLabel: "2")?.aor == "sip:+15551234567@carrier.example.net")
        #expect(m.sender(ofLabel: "2")?.name == "Caller")
        #expect(m.sender(ofLabel: "9") == nil)
    }

    @Test(
        "the answer: every m-line in order, taken ones recvonly on their port with the offer's types, refused ones port 0"
    )
    func answer() throws {
        let offer = try RecordingOffer.parse(contentType: "application/sdp", body: Array(Self.crlf(Self.sdp).utf8))
        let text = SDPAnswer.make(
            offer: offer, ports: [40000, 40002, nil, nil, nil], host: "127.0.0.1", sessionID: 7, version: 1)
        let lines = text.components(separatedBy: "\r\n")
        #expect(
            lines.filter { $0.hasPrefix("m=") } == [
                "m=audio 40000 RTP/AVP 0 101", "m=audio 40002 RTP/AVP 111 98 9 110", "m=audio 0 RTP/SAVP 0",
                "m=video 0 RTP/AVP 96", "m=audio 0 RTP/AVP 18",
            ])
        #expect(lines.filter { $0 == "a=recvonly" }.count == 2)
        #expect(lines.contains("a=rtpmap:98 L16/16000") && lines.contains("a=fmtp:111 useinbandfec=1"))
        #expect(lines.contains("a=label:2") && lines.contains("c=IN IP4 127.0.0.1"))
        // telephone-event is answered at the clock it was offered with (48 kHz beside Opus).
        #expect(
            lines.contains("a=rtpmap:101 telephone-event/8000") && lines.contains("a=rtpmap:110 telephone-event/48000"))
        let srtp = SDPAnswer.make(
            offer: offer, ports: [nil, nil, 40004, nil, nil], host: "127.0.0.1", sessionID: 7, version: 2)
        let srtpLines = srtp.components(separatedBy: "\r\n")
        #expect(srtpLines.contains("m=audio 40004 RTP/SAVP 0"))
        let answerKey = try #require(srtpLines.first { $0.hasPrefix("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") })
        #expect(
            try SDESCrypto(attribute: String(answerKey.dropFirst("a=crypto:".count))).keySalt
                != offer.streams[2].srtp?.keySalt)
        // Sofia's own parser reads the answer back.
        let back = try RecordingOffer.parse(contentType: "application/sdp", body: Array(text.utf8))
        #expect(back.streams.map(\.port) == [40000, 40002, 0, 0, 0])
    }

    @Test(
        "bad bodies get the SIP status an SBC expects",
        arguments: [
            ("multipart/mixed;boundary=other", "--b-42\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n", 400),
            ("multipart/mixed;boundary=b-42", "", 488),
            ("application/sdp", "this is not sdp", 400),
            ("text/plain", "hello", 415),
            // Numbers past UInt32 (Sofia reads them unbounded): a clear 400, never a trap.
            (
                "application/sdp",
                "v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 99999999999999999999 RTP/AVP 0\r\n",
                400
            ),
            (
                "application/sdp",
                "v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", 400
            ),
        ] as [(String, String, Int)])
    func errors(contentType: String, body: String, status: Int) {
        #expect {
            try RecordingOffer.parse(contentType: contentType, body: Array(body.utf8))
        } throws: { ($0 as? OfferError)?.status == status }
    }

    @Test("a clock rate past any integer makes the format unknown, not a crash")
    func hugeRate() throws {
        let sdp =
            "v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
            + "m=audio 4000 RTP/AVP 96 0\r\na=rtpmap:96 opus/99999999999999999999/2\r\na=rtpmap:0 PCMU/8000\r\n"
        let offer = try RecordingOffer.parse(contentType: "application/sdp", body: Array(sdp.utf8))
        #expect(offer.streams.first?.codecs.map(\.codec) == [.pcmu])
    }

    @Test("metadata without SDP is 488; metadata that is not XML, or truncated, is 400; a huge body is 400")
    func metadataErrors() {
        let onlyXML = Self.multipart([("application/rs-metadata+xml", Self.metadata)])
        #expect { try RecordingOffer.parse(contentType: "multipart/mixed;boundary=b-42", body: onlyXML) } throws: {
            ($0 as? OfferError)?.status == 488
        }
        for xml in ["<recording xmlns=\"urn:ietf:params:xml:ns:recording:1\"><participant>", "<<<", "<other/>"] {
            let body = Self.multipart([("application/sdp", Self.sdp), ("application/rs-metadata+xml", xml)])
            #expect { try RecordingOffer.parse(contentType: "multipart/mixed;boundary=b-42", body: body) } throws: {
                ($0 as? OfferError)?.status == 400
            }
        }
        let huge = [UInt8](repeating: 0x61, count: RecordingOffer.maxBody + 1)
        #expect { try RecordingOffer.parse(contentType: "application/sdp", body: huge) } throws: {
            ($0 as? OfferError)?.status == 400
        }
    }

    @Test("random bytes as a body never crash the parsers")
    func garbage() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<300 {
            var bytes: [UInt8] = []
            for _ in 0..<(i % 97 + 1) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                bytes.append(UInt8(truncatingIfNeeded: state >> 33))
            }
            let prefix = Array(
                (i % 2 == 0 ? "--b-42\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nm=audio " : "v=0\r\n").utf8)
            _ = try? RecordingOffer.parse(
                contentType: i % 2 == 0 ? "multipart/mixed;boundary=b-42" : "application/sdp", body: prefix + bytes)
        }
    }
}
