internal import CSofiaSIP
import EmotionCore
import EmotionMedia
import Foundation

/// Why an INVITE's body cannot be answered: the SIP status to send and a reason phrase for it.
public struct OfferError: Error, Equatable, CustomStringConvertible {
    public let status: Int
    public let reason: String
    public var description: String { "\(status) \(reason)" }

    public static func badRequest(_ reason: String) -> OfferError { OfferError(status: 400, reason: reason) }
    public static func notAcceptable(_ reason: String) -> OfferError { OfferError(status: 488, reason: reason) }
}

/// One m-line of the offer, as the answer needs it.
public struct OfferedStream: Sendable, Equatable {
    public var index: Int
    public var media: String
    public var port: Int
    public var proto: String
    /// The format list as offered (echoed on a rejected line, RFC 3264).
    public var formats: [String]
    /// `a=label` (RFC 4574): how the metadata names this stream.
    public var label: String?
    /// Audio formats this service decodes, in the offer's order of preference.
    public var codecs: [Codec]
    /// The RFC 4733 payload type, if offered.
    public var telephoneEvent: UInt8?
    /// Its clock as offered (8000 with G.711, 48000 beside Opus): the answer must repeat it.
    public var telephoneEventRate = 8000
    /// `a=crypto` lines (SDES) as offered.
    public var crypto: [String]
    /// For `RTP/SAVP`: the first offered key of a suite this service decrypts.
    public var srtp: SDESCrypto?
    /// Why the stream is not taken (answered with port 0); nil when it is.
    public var rejection: String?
    /// The offer sends on it (sendonly or sendrecv); false on hold (inactive).
    public var sending = true

    public struct Codec: Sendable, Equatable {
        public var payloadType: UInt8
        public var codec: VoiceCodec
        /// The `a=fmtp` parameters as offered, echoed in the answer.
        public var fmtp: String?
    }

    /// The offer's dynamic payload types bound to their codecs, for the leg.
    public var dynamicCodecs: [UInt8: VoiceCodec] {
        var out: [UInt8: VoiceCodec] = [:]
        for c in codecs where (96...127).contains(c.payloadType) { out[c.payloadType] = c.codec }
        return out
    }
}

/// An INVITE body parsed with Sofia-SIP's MIME and SDP parsers: the streams and, for SIPREC, the metadata.
public struct RecordingOffer: Sendable, Equatable {
    public var streams: [OfferedStream]
    public var metadata: RecordingMetadata?
    /// The SDP session's origin line id, for a re-INVITE's version check.
    public var sdpSessionVersion: String?

    /// The largest body taken (RFC 3261 puts no bound; an SBC's offer is a few kB).
    public static let maxBody = 64 * 1024

    /// `contentType` is the INVITE's Content-Type header value (with its boundary for multipart).
    public static func parse(contentType: String?, body: [UInt8]) throws(OfferError) -> RecordingOffer {
        guard !body.isEmpty else { throw .notAcceptable("no SDP offer") }
        guard body.count <= maxBody else { throw .badRequest("body over \(maxBody) bytes") }
        let home = su_home_new(isize_t(MemoryLayout<su_home_t>.size))?.assumingMemoryBound(to: su_home_t.self)
        defer { su_home_unref(home) }
        let type = (contentType ?? "application/sdp").trimmingCharacters(in: .whitespaces)
        let lower = type.lowercased()
        var sdp: [UInt8]?
        var xml: [UInt8]?
        if lower.hasPrefix("multipart/mixed") {
            guard let ct = et_content_type_make(home, type) else { throw .badRequest("bad multipart Content-Type") }
            let payload = body.withUnsafeBufferPointer { b in
                msg_payload_create(home, UnsafeRawPointer(b.baseAddress), usize_t(b.count))
            }
            guard let payload, let parts = msg_multipart_parse(home, ct, payload) else {
                throw .badRequest("malformed multipart body")
            }
            var part: UnsafeMutablePointer<msg_multipart_t>? = parts
            while let p = part {
                let partType = p.pointee.mp_content_type.flatMap { $0.pointee.c_type.map { String(cString: $0) } }
                let bytes: [UInt8] =
                    p.pointee.mp_payload.map { pl in
                        guard let data = pl.pointee.pl_data else { return [] }
                        return Array(UnsafeRawBufferPointer(start: data, count: Int(pl.pointee.pl_len)))
                    } ?? []
                switch partType?.lowercased() {
                case "application/sdp": if sdp == nil { sdp = bytes }
                case "application/rs-metadata+xml": if xml == nil { xml = bytes }
                default: break  // other parts (e.g. a preamble) are not ours to read
                }
                part = p.pointee.mp_next
            }
        } else if lower.hasPrefix("application/sdp") {
            sdp = body
        } else {
            throw OfferError(status: 415, reason: "unsupported body type \(type.prefix(64))")
        }
        guard let sdp, !sdp.isEmpty else { throw .notAcceptable("no SDP offer") }
        var offer = try parseSDP(sdp, home: home)
        if let xml {
            do throws(RecordingMetadata.ParseError) { offer.metadata = try RecordingMetadata.parse(Data(xml)) } catch {
                throw .badRequest(error.description)
            }
        }
        return offer
    }

    private static func parseSDP(
        _ bytes: [UInt8], home: UnsafeMutablePointer<su_home_t>?
    ) throws(OfferError)
        -> RecordingOffer
    {
        let parser: OpaquePointer? = bytes.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { et_sdp_parse(home, $0.baseAddress, Int32($0.count)) }
        }
        guard let parser else { throw .badRequest("SDP parser failed") }
        defer { sdp_parser_free(parser) }
        if let error = sdp_parsing_error(parser) {
            throw .badRequest("bad SDP: \(String(cString: error).prefix(80))")
        }
        guard let session = sdp_session(parser) else { throw .badRequest("bad SDP: no session") }
        var streams: [OfferedStream] = []
        var media = session.pointee.sdp_media
        while let m = media {
            let s = stream(m, index: streams.count)
            guard (0...65535).contains(s.port) else { throw .badRequest("bad SDP: m-line port out of range") }
            streams.append(s)
            media = m.pointee.m_next
        }
        let version = session.pointee.sdp_origin.map { String($0.pointee.o_version) }
        return RecordingOffer(streams: streams, metadata: nil, sdpSessionVersion: version)
    }

    private static func text(_ p: UnsafePointer<CChar>?) -> String? { p.map { String(cString: $0) } }

    private static func stream(_ m: UnsafeMutablePointer<sdp_media_t>, index: Int) -> OfferedStream {
        let mt = m.pointee
        var formats: [String] = []
        var f = mt.m_format
        while let l = f {
            if let t = text(l.pointee.l_text) { formats.append(t) }
            f = l.pointee.l_next
        }
        var s = OfferedStream(
            // Sofia reads numbers with strtoul, unbounded: never trust them to fit.
            index: index, media: text(mt.m_type_name) ?? "?", port: Int(exactly: mt.m_port) ?? Int.max,
            proto: text(mt.m_proto_name) ?? "?", formats: formats, label: nil, codecs: [], telephoneEvent: nil,
            crypto: [], srtp: nil, rejection: nil)
        var a = mt.m_attributes
        while let attr = a {
            let name = text(attr.pointee.a_name)?.lowercased()
            if name == "label" { s.label = text(attr.pointee.a_value) }
            if name == "crypto", let v = text(attr.pointee.a_value) { s.crypto.append(v) }
            a = attr.pointee.a_next
        }
        var rm = mt.m_rtpmaps
        // For RTP, Sofia keeps the formats as rtpmaps only.
        let rtpFormats = formats.isEmpty
        while let r = rm {
            let pt = UInt8(et_rtpmap_pt(r))
            if rtpFormats { s.formats.append(String(pt)) }
            let encoding = text(r.pointee.rm_encoding) ?? ""
            if let rate = Int(exactly: r.pointee.rm_rate),
                let codec = VoiceCodec(rtpmapEncoding: encoding, clockRate: rate)
            {
                s.codecs.append(.init(payloadType: pt, codec: codec, fmtp: text(r.pointee.rm_fmtp)))
            } else if encoding.lowercased() == "telephone-event", s.telephoneEvent == nil {
                s.telephoneEvent = pt
                s.telephoneEventRate = Int(exactly: r.pointee.rm_rate).flatMap { $0 > 0 ? $0 : nil } ?? 8000
            }
            rm = r.pointee.rm_next
        }
        if s.codecs.isEmpty, mt.m_type == sdp_media_audio, s.port != 0 {
            s.rejection = "no codec this service decodes"
        } else if mt.m_type != sdp_media_audio {
            s.rejection = "not audio"
        } else if s.port == 0 || et_media_rejected(m) != 0 {
            s.rejection = "disabled in the offer"
        } else if mt.m_proto == sdp_proto_srtp {
            // The first key we can use, in the offer's order of preference (RFC 4568 6.1).
            s.srtp = s.crypto.lazy.compactMap { try? SDESCrypto(attribute: $0) }.first
            if s.srtp == nil {
                s.rejection = "RTP/SAVP without an a=crypto of AES_CM_128_HMAC_SHA1_80 or _32 with an inline key"
            }
        } else if mt.m_proto != sdp_proto_rtp {
            s.rejection = "transport \(s.proto) not taken"
        }
        // A stream on hold (inactive) stays a leg: it keeps its state until media resumes.
        s.sending = et_media_mode(m) & UInt32(sdp_sendonly.rawValue) != 0
        return s
    }
}
