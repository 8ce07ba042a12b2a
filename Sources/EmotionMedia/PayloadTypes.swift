import EmotionCore

extension VoiceCodec {
    /// The RTP clock: 8 kHz for G.711 (RFC 3551), 48 kHz for Opus whatever it carries (RFC 7587).
    public var rtpClockRate: Int {
        switch self {
        case .pcmu, .pcma: 8000
        case .opus: 48000
        }
    }
}

/// What each RTP payload type on a leg means: the one place that decides a packet's codec and clock.
public struct PayloadTypes: Sendable, Equatable {
    /// The codec the leg was declared with, if any: other audio codecs are then refused.
    public var requestedCodec: VoiceCodec?
    /// The dynamic payload type that carries Opus, when the offer said which (else any dynamic one).
    public var opusPayloadType: UInt8?
    public var telephoneEventPayloadType: UInt8

    public init(
        requestedCodec: VoiceCodec? = nil, opusPayloadType: UInt8? = nil, telephoneEventPayloadType: UInt8 = 101
    ) {
        self.requestedCodec = requestedCodec
        self.opusPayloadType = opusPayloadType
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
        switch payloadType {
        case 13, 19: return .comfortNoise
        case telephoneEventPayloadType: return .telephoneEvent
        case 0: return acceptsG711 ? .audio(.pcmu) : .unknown
        case 8: return acceptsG711 ? .audio(.pcma) : .unknown
        case 96...127:
            if let opusPayloadType { return payloadType == opusPayloadType ? .audio(.opus) : .unknown }
            // A dynamic payload type means Opus unless the leg was declared G.711.
            return requestedCodec == nil || requestedCodec == .opus ? .audio(.opus) : .unknown
        default: return .unknown
        }
    }

    /// The clock a payload type's timestamps run on; nil for types that carry no audio here.
    public func clockRate(of payloadType: UInt8) -> Int? {
        if case .audio(let codec) = kind(of: payloadType) { return codec.rtpClockRate }
        return nil
    }

    /// The clock a leg starts with, before its first packet says otherwise.
    public var initialClockRate: Int { (requestedCodec ?? .pcmu).rtpClockRate }

    private var acceptsG711: Bool { requestedCodec == nil || requestedCodec == .pcmu || requestedCodec == .pcma }
}
