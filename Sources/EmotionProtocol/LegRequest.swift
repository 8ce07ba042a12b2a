import EmotionCore
import EmotionMedia
import Foundation

/// The body of POST /v1/legs, checked field by field. Pure, so the fuzzer drives it directly.
public struct LegRequest: Sendable, Equatable {
    public var callID: String
    public var role: String
    public var codec: VoiceCodec?
    public var port: Int?
    /// The dynamic RTP payload type the codec arrives on (96-127), when the switch knows it.
    public var payloadType: UInt8?
    /// The SRTP key (SDES), when the media is encrypted.
    public var srtp: SDESCrypto?
    /// Who handles the call, for reports (`agent_id`), and free string labels (`tags`).
    public var agentID: String?
    public var tags: [String: String] = [:]
    /// An Asterisk AudioSocket stream the dialplan will connect with this UUID (lower case): the leg
    /// waits for it instead of RTP.
    public var audiosocketUUID: String?

    public struct Problem: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    public static let knownFields = [
        "call_id", "role", "codec", "port", "payload_type", "srtp", "agent_id", "tags", "audiosocket_uuid",
    ]

    /// Tags stay small: they travel in `leg.start` and `leg.end` datagrams.
    public static let maxTags = 8
    public static let maxTagValueBytes = 64

    /// `tags` as an object of short strings, or what is wrong with it.
    public static func checkTags(_ tags: [String: Any]) -> Result<[String: String], Problem> {
        guard tags.count <= maxTags else { return .failure(Problem(description: "tags: at most \(maxTags) keys")) }
        var out: [String: String] = [:]
        for (k, v) in tags {
            guard validIdentifier(k), k.utf8.count <= 32 else {
                return .failure(Problem(description: "tags: keys are 1-32 characters of letters, digits and ._:@+-"))
            }
            guard let text = v as? String, text.utf8.count <= maxTagValueBytes,
                !text.unicodeScalars.contains(where: { $0.value < 0x20 })
            else {
                return .failure(
                    Problem(description: "tags.\(k): must be a string of at most \(maxTagValueBytes) bytes"))
            }
            out[k] = text
        }
        return .success(out)
    }

    /// Identifiers a switch can pass: letters, digits and `._:@+-`, 1 to 128 characters.
    public static func validIdentifier(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 128
            && s.unicodeScalars.allSatisfy {
                ($0.value < 128) && (CharacterSet.alphanumerics.contains($0) || "._:@+-".unicodeScalars.contains($0))
            }
    }

    /// The request, or what is wrong with it (one sentence, for a 400).
    public static func parse(_ body: Data) -> Result<LegRequest, Problem> {
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                return .failure(Problem(description: "body must be a JSON object"))
            }
            object = o
        } catch {
            return .failure(Problem(description: "body is not valid JSON"))
        }
        if let unknown = object.keys.sorted().first(where: { !knownFields.contains($0) }) {
            return .failure(
                Problem(
                    description: "unknown field '\(unknown.prefix(64))' (known: \(knownFields.joined(separator: ", ")))"
                ))
        }
        guard let callID = object["call_id"] as? String else {
            return .failure(Problem(description: "call_id (string) is required"))
        }
        guard let role = object["role"] as? String else {
            return .failure(Problem(description: "role (string) is required"))
        }
        var request = LegRequest(callID: callID, role: role)
        if let c = object["codec"], !(c is NSNull) {
            guard let text = c as? String, let parsed = VoiceCodec(rawValue: text.lowercased()) else {
                let names = VoiceCodec.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                return .failure(Problem(description: "codec must be one of \(names)"))
            }
            request.codec = parsed
        }
        if let p = object["port"], !(p is NSNull) {
            guard let n = p as? NSNumber, !(p is Bool), n.doubleValue.isFinite, Double(n.intValue) == n.doubleValue,
                (1...65535).contains(n.intValue)
            else {
                return .failure(Problem(description: "port must be an integer in 1-65535"))
            }
            request.port = n.intValue
        }
        if let p = object["payload_type"], !(p is NSNull) {
            guard let n = p as? NSNumber, !(p is Bool), n.doubleValue.isFinite, Double(n.intValue) == n.doubleValue,
                (96...127).contains(n.intValue)
            else {
                return .failure(Problem(description: "payload_type must be a dynamic RTP payload type, 96-127"))
            }
            guard let codec = request.codec, codec.staticPayloadType == nil else {
                return .failure(
                    Problem(description: "payload_type needs a codec without a static type (opus, l16, l16-16000)"))
            }
            request.payloadType = UInt8(n.intValue)
        }
        if let k = object["srtp"], !(k is NSNull) {
            guard let text = k as? String else {
                return .failure(Problem(description: "srtp must be a string: \"AES_CM_128_HMAC_SHA1_80 inline:KEY\""))
            }
            do { request.srtp = try SDESCrypto(attribute: text) } catch {
                return .failure(Problem(description: "srtp: \(error.description)"))
            }
        }
        if let a = object["agent_id"], !(a is NSNull) {
            guard let text = a as? String, validIdentifier(text) else {
                return .failure(
                    Problem(description: "agent_id must be 1-128 characters of letters, digits and ._:@+-"))
            }
            request.agentID = text
        }
        if let t = object["tags"], !(t is NSNull) {
            guard let tags = t as? [String: Any] else {
                return .failure(Problem(description: "tags must be an object of strings"))
            }
            switch checkTags(tags) {
            case .success(let checked): request.tags = checked
            case .failure(let problem): return .failure(problem)
            }
        }
        if let u = object["audiosocket_uuid"], !(u is NSNull) {
            guard let text = u as? String, let uuid = UUID(uuidString: text) else {
                return .failure(Problem(description: "audiosocket_uuid must be a UUID (as AudioSocket() takes it)"))
            }
            guard request.codec == nil, request.port == nil, request.payloadType == nil, request.srtp == nil else {
                return .failure(
                    Problem(description: "audiosocket_uuid goes without codec, port, payload_type and srtp (no RTP)"))
            }
            request.audiosocketUUID = uuid.uuidString.lowercased()
        }
        return .success(request)
    }

    public init(
        callID: String, role: String, codec: VoiceCodec? = nil, port: Int? = nil, payloadType: UInt8? = nil,
        srtp: SDESCrypto? = nil
    ) {
        self.srtp = srtp
        self.callID = callID
        self.role = role
        self.codec = codec
        self.port = port
        self.payloadType = payloadType
    }
}
