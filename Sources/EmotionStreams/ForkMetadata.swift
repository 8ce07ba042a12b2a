import Foundation

/// What the first text frame of a FreeSWITCH mod_audio_fork / mod_audio_stream stream or a jambonz
/// `listen` stream says about the call, with the URL's query: the call's id, who is on which channel,
/// the sample rate and how the channels are mixed. Either may be missing (mod_audio_fork sends the
/// metadata only when the dialplan gives one); the query wins over the metadata.
///
/// Keys: `call_id` (jambonz: `callSid`, `callId`), `role` (mono and mixed streams), `roles` (stereo:
/// "customer,agent", left first: FreeSWITCH puts what the channel receives on the left), `agent_id`,
/// `sample_rate` (jambonz: `sampleRate`; 8000 when neither says), `mix` (jambonz: `mixType`: mono,
/// mixed, stereo).
public struct ForkMetadata: Equatable, Sendable {
    public enum Mix: String, Sendable { case mono, mixed, stereo }

    public var callID: String?
    public var roles: [String]
    public var agentID: String?
    public var sampleRate: Int
    public var mix: Mix
    public var tags: [String: String]

    public struct Problem: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    public static let rates: Set<Int> = [8000, 16_000, 24_000, 32_000, 48_000, 64_000]

    /// `text`: the first text frame (nil when the stream began with audio); `query`: the URL's.
    public static func parse(text: String?, query: [String: String]) -> Result<ForkMetadata, Problem> {
        var object: [String: Any] = [:]
        if let text, !text.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let data = text.data(using: .utf8),
                let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { return .failure(Problem(description: "the metadata frame is not a JSON object")) }
            object = o
        }
        func string(_ keys: String...) -> String? {
            for k in keys {
                if let q = query[k], !q.isEmpty { return q }
            }
            for k in keys {
                if let v = object[k] as? String, !v.isEmpty { return v }
                if let v = object[k] as? Int { return String(v) }
            }
            return nil
        }
        let rateText = string("sample_rate", "sampleRate", "rate") ?? "8000"
        let rate = Int(rateText.lowercased().replacingOccurrences(of: "k", with: "000")) ?? -1
        guard rates.contains(rate) else {
            return .failure(
                Problem(description: "sample rate '\(rateText.prefix(16))' (8000, 16000, 24000, 32000, 48000 or 64000)")
            )
        }
        let mixText = string("mix", "mixType", "mix_type") ?? "mono"
        guard let mix = Mix(rawValue: mixText.lowercased()) else {
            return .failure(Problem(description: "mix '\(mixText.prefix(16))' (mono, mixed or stereo)"))
        }
        let roles: [String]
        switch mix {
        case .stereo:
            roles = (string("roles") ?? "customer,agent").split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard roles.count == 2 else {
                return .failure(Problem(description: "roles: two names for a stereo stream"))
            }
        case .mono: roles = [string("role") ?? "customer"]
        case .mixed: roles = [string("role") ?? "mixed"]
        }
        var tags: [String: String] = [:]
        if let t = object["tags"] as? [String: String] { tags = t }
        return .success(
            ForkMetadata(
                callID: string("call_id", "callSid", "callId", "uuid"), roles: roles, agentID: string("agent_id"),
                sampleRate: rate, mix: mix, tags: tags))
    }

    public var channels: Int { mix == .stereo ? 2 : 1 }
}
