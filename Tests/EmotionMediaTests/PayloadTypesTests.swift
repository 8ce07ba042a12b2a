import EmotionCore
@testable import EmotionMedia
import Testing

@Suite("payload types")
struct PayloadTypesTests {
    @Test("an undeclared leg takes G.711, G.722 and any dynamic type as Opus; DTMF and CN are not audio")
    func undeclared() {
        let t = PayloadTypes()
        #expect(t.kind(of: 0) == .audio(.pcmu) && t.kind(of: 8) == .audio(.pcma) && t.kind(of: 9) == .audio(.g722))
        #expect(
            t.kind(of: 111) == .audio(.opus) && t.kind(of: 101) == .telephoneEvent && t.kind(of: 13) == .comfortNoise)
        #expect(t.kind(of: 18) == .unknown && t.kind(of: 11) == .unknown, "G.729 and 44.1 kHz L16 are not taken")
        #expect(t.clockRate(of: 9) == 8000, "G.722's RTP clock is 8 kHz (RFC 3551)")
    }

    @Test("an offer's rtpmap binds dynamic types; others are refused; the declared codec limits the rest")
    func mapped() {
        let offer = PayloadTypes(dynamicCodecs: [98: .l16Wide, 111: .opus, 12: .opus])
        #expect(offer.kind(of: 98) == .audio(.l16Wide) && offer.clockRate(of: 98) == 16_000)
        #expect(offer.kind(of: 111) == .audio(.opus) && offer.kind(of: 100) == .unknown)
        #expect(offer.dynamicCodecs[12] == nil, "a static type cannot be rebound")
        let opusOn101 = PayloadTypes(dynamicCodecs: [101: .opus])
        #expect(opusOn101.kind(of: 101) == .audio(.opus), "a bound dynamic type wins over the default DTMF type")
        let declared = PayloadTypes(requestedCodec: .g722)
        #expect(declared.kind(of: 9) == .audio(.g722) && declared.kind(of: 0) == .unknown)
        #expect(declared.kind(of: 111) == .unknown)
        let l16 = PayloadTypes(requestedCodec: .l16)
        #expect(l16.kind(of: 97) == .audio(.l16) && l16.initialClockRate == 8000)
        let g711 = PayloadTypes(requestedCodec: .pcma)
        #expect(g711.kind(of: 0) == .audio(.pcmu), "the two G.711 laws count as one")
    }

    @Test("rtpmap names map to codecs case-insensitively, at their clock only")
    func rtpmap() {
        #expect(VoiceCodec(rtpmapEncoding: "PCMU", clockRate: 8000) == .pcmu)
        #expect(VoiceCodec(rtpmapEncoding: "g722", clockRate: 8000) == .g722)
        #expect(VoiceCodec(rtpmapEncoding: "L16", clockRate: 16_000) == .l16Wide)
        #expect(VoiceCodec(rtpmapEncoding: "OPUS", clockRate: 48_000) == .opus)
        #expect(VoiceCodec(rtpmapEncoding: "L16", clockRate: 44_100) == nil)
        #expect(VoiceCodec(rtpmapEncoding: "G729", clockRate: 8000) == nil)
        for c in VoiceCodec.allCases {
            let parts = c.rtpmapEncoding.split(separator: "/")
            #expect(VoiceCodec(rtpmapEncoding: String(parts[0]), clockRate: Int(parts[1])!) == c)
        }
    }
}
