import EmotionCore
import EmotionMedia

/// The recording server's SDP answer (RFC 3264): every offered m-line answered in order, a taken stream
/// `recvonly` on its leg's port with the offer's own payload types, a refused one with port 0.
public enum SDPAnswer {
    /// `ports[i]` is the local RTP port for stream i, nil when it is refused.
    public static func make(
        offer: RecordingOffer, ports: [Int?], host: String, sessionID: UInt64, version: UInt64
    ) -> String {
        var lines = [
            "v=0", "o=EmotionTap \(sessionID) \(version) IN IP4 \(host)", "s=EmotionTap", "c=IN IP4 \(host)", "t=0 0",
        ]
        for (i, s) in offer.streams.enumerated() {
            guard let port = i < ports.count ? ports[i] : nil else {
                let formats = s.formats.isEmpty ? "0" : s.formats.joined(separator: " ")
                lines.append("m=\(s.media) 0 \(s.proto) \(formats)")
                continue
            }
            var types = s.codecs.map { String($0.payloadType) }
            if let te = s.telephoneEvent { types.append(String(te)) }
            lines.append("m=audio \(port) \(s.srtp == nil ? "RTP/AVP" : "RTP/SAVP") \(types.joined(separator: " "))")
            if let key = s.srtp {
                // SDES wants the answerer's own key, though a recorder never sends with it.
                lines.append("a=crypto:" + SDESCrypto.random(key.suite, tag: key.tag ?? 1).attribute)
            }
            for c in s.codecs {
                lines.append("a=rtpmap:\(c.payloadType) \(c.codec.rtpmapEncoding)")
                if let fmtp = c.fmtp { lines.append("a=fmtp:\(c.payloadType) \(fmtp)") }
            }
            if let te = s.telephoneEvent {
                lines.append("a=rtpmap:\(te) telephone-event/\(s.telephoneEventRate)")
                lines.append("a=fmtp:\(te) 0-16")
            }
            if let label = s.label { lines.append("a=label:\(label)") }
            // RFC 3264: an inactive offer (hold) is answered inactive; otherwise we only receive.
            lines.append(s.sending ? "a=recvonly" : "a=inactive")
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
