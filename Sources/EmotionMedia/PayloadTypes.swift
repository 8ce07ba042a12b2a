import EmotionCore

extension VoiceCodec {
    /// The RTP clock: 8 kHz for G.711 and, by RFC 3551's rule, G.722; the sampling rate for L16; 48 kHz
    /// for Opus whatever it carries (RFC 7587).
    public var rtpClockRate: Int {
        switch self {
        case .pcmu, .pcma, .g722, .l16: 8000
        case .l16Wide: 16_000
        case .opus: 48000
        }
    }

    var isG711: Bool { self == .pcmu || self == .pcma }
}

/// What each RTP payload type on a leg means: the one place that decides a packet's codec and clock.
public struct PayloadTypes: Sendable, Equatable {
    /// The codec the leg was declared with, if any: other audio codecs are then refused (G.711's two
    /// laws count as one).
    public var requestedCodec: VoiceCodec?
    /// Dynamic payload types (96-127) an SDP offer or the API bound to a codec. Without any, a dynamic
    /// type means the declared codec if it has no static type, else Opus.
    public var dynamicCodecs: [UInt8: VoiceCodec]
    public var telephoneEventPayloadType: UInt8

    public init(
        requestedCodec: VoiceCodec? = nil, dynamicCodecs: [UInt8: VoiceCodec] = [:],
        telephoneEventPayloadType: UInt8 = 101
    ) {
        self.requestedCodec = requestedCodec
        self.dynamicCodecs = dynamicCodecs.filter { (96...127).contains($0.key) }
        self.telephoneEventPayloadType = telephoneEventPayloadType
    }

    public enum Kind: Equatable, Sendable {
        case audio(VoiceCodec)
        /// RFC 3389 comfort noise (13, and the old 19).
        case comfortNoise
        /// RFC 4733 DTMF.
        case telephoneEvent
        case unknown
    }

    @inline(__always)
    public func kind(of payloadType: UInt8) -> Kind {
        // A dynamic type the offer or the API bound to a codec is that codec, even on the number the
        // config reserves for DTMF (an offer without telephone-event may put Opus on 101).
        if !dynamicCodecs.isEmpty, let codec = dynamicCodecs[payloadType] {
            return accepts(codec) ? .audio(codec) : .unknown
        }
        switch payloadType {
        case 13, 19: return .comfortNoise
        case telephoneEventPayloadType: return .telephoneEvent
        case 0: return accepts(.pcmu) ? .audio(.pcmu) : .unknown
        case 8: return accepts(.pcma) ? .audio(.pcma) : .unknown
        case 9: return accepts(.g722) ? .audio(.g722) : .unknown
        case 96...127:
            if !dynamicCodecs.isEmpty {
                guard let codec = dynamicCodecs[payloadType], accepts(codec) else { return .unknown }
                return .audio(codec)
            }
            guard let requestedCodec else { return .audio(.opus) }
            return requestedCodec.staticPayloadType == nil ? .audio(requestedCodec) : .unknown
        default: return .unknown
        }
    }

    /// The clock a payload type's timestamps run on; nil for types that carry no audio here.
    public func clockRate(of payloadType: UInt8) -> Int? {
        if case .audio(let codec) = kind(of: payloadType) { return codec.rtpClockRate }
        return nil
    }

    /// The clock a leg starts with, before its first packet says otherwise.
    public var initialClockRate: Int {
        (requestedCodec ?? dynamicCodecs.sorted { $0.key < $1.key }.first?.value ?? .pcmu).rtpClockRate
    }

    @inline(__always)
    private func accepts(_ codec: VoiceCodec) -> Bool {
        guard let requestedCodec else { return true }
        return requestedCodec == codec || (requestedCodec.isG711 && codec.isG711)
    }
}
