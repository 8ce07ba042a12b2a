import EmotionDigest
import Foundation

/// The HTTP message signature on a Genesys AudioHook connection request (draft-ietf-httpbis-message-
/// signatures, as AudioHook v2 uses it): HMAC-SHA256 with the base64-decoded client secret over
/// `@request-target`, `@authority` and the four AudioHook headers, label `sig1`, keyed by the API key.
public enum AudioHookSignature {
    /// The components a valid signature covers, in this order.
    public static let components = [
        "@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id",
        "audiohook-correlation-id", "x-api-key",
    ]
    /// Clock skew allowed on `created` and `expires`, and the oldest signature accepted.
    public static let skewSeconds = 3.0
    public static let maxAgeSeconds = 10.0

    public struct Problem: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Checks the request's signature. `headers` by lower-case name; `requestTarget` the path and
    /// query; `secrets` the client secret (decoded) of each API key; an API key mapped to an empty
    /// secret may connect unsigned.
    public static func verify(
        requestTarget: String, authority: String, headers: [String: String], secrets: [String: [UInt8]],
        now: Date = Date()
    ) -> Result<Void, Problem> {
        guard let apiKey = headers["x-api-key"], !apiKey.isEmpty else {
            return .failure(Problem(description: "X-API-KEY is missing"))
        }
        guard let secret = secrets[apiKey] else { return .failure(Problem(description: "unknown API key")) }
        guard let input = headers["signature-input"], let signature = headers["signature"] else {
            return secret.isEmpty
                ? .success(()) : .failure(Problem(description: "Signature and Signature-Input are required"))
        }
        guard let parsed = parseInput(input) else {
            return .failure(Problem(description: "Signature-Input is malformed"))
        }
        guard parsed.components == components else {
            return .failure(Problem(description: "the signature must cover \(components.joined(separator: " "))"))
        }
        guard parsed.parameters["keyid"] == apiKey else {
            return .failure(Problem(description: "the signature's keyid is not the X-API-KEY"))
        }
        guard parsed.parameters["alg"] == nil || parsed.parameters["alg"] == "hmac-sha256" else {
            return .failure(Problem(description: "only alg hmac-sha256 is accepted"))
        }
        let t = now.timeIntervalSince1970
        guard let created = parsed.parameters["created"].flatMap(Double.init) else {
            return .failure(Problem(description: "the signature has no created time"))
        }
        guard created <= t + skewSeconds, t - created <= maxAgeSeconds else {
            return .failure(Problem(description: "the signature is too old or from the future"))
        }
        if let expires = parsed.parameters["expires"].flatMap(Double.init), expires < t - skewSeconds {
            return .failure(Problem(description: "the signature has expired"))
        }
        guard let expected = signatureValue(signature, label: parsed.label) else {
            return .failure(Problem(description: "Signature is malformed"))
        }
        var lines: [String] = []
        for name in components {
            let value: String?
            switch name {
            case "@request-target": value = requestTarget
            case "@authority": value = authority.lowercased()
            default: value = headers[name]?.trimmingCharacters(in: .whitespaces)
            }
            guard let value else { return .failure(Problem(description: "header \(name) is missing")) }
            lines.append("\"\(name)\": \(value)")
        }
        lines.append("\"@signature-params\": \(parsed.parametersText)")
        let base = lines.joined(separator: "\n")
        guard Digest.equalInConstantTime(Array(expected), Digest.hmacSHA256(key: secret, data: base.utf8)) else {
            return .failure(Problem(description: "signature verification failed"))
        }
        return .success(())
    }

    /// The signature a client sends (tests and tools); returns (Signature-Input, Signature).
    public static func sign(
        requestTarget: String, authority: String, headers: [String: String], apiKey: String, secret: [UInt8],
        nonce: String, created: Int, expires: Int
    ) -> (input: String, signature: String) {
        let list = "(" + components.map { "\"\($0)\"" }.joined(separator: " ") + ")"
        let params =
            "\(list);keyid=\"\(apiKey)\";nonce=\"\(nonce)\";alg=\"hmac-sha256\";created=\(created);expires=\(expires)"
        var lines: [String] = []
        for name in components {
            let value =
                name == "@request-target" ? requestTarget : name == "@authority" ? authority : headers[name] ?? ""
            lines.append("\"\(name)\": \(value)")
        }
        lines.append("\"@signature-params\": \(params)")
        let mac = Digest.hmacSHA256(key: secret, data: lines.joined(separator: "\n").utf8)
        return ("sig1=\(params)", "sig1=:\(Data(mac).base64EncodedString()):")
    }

    struct Input {
        var label: String
        var components: [String]
        var parameters: [String: String]
        /// Everything after `label=`, as the signature base repeats it.
        var parametersText: String
    }

    /// `sig1=("a" "b");keyid="k";created=1` (one signature; AudioHook sends one).
    static func parseInput(_ text: String) -> Input? {
        guard let eq = text.firstIndex(of: "=") else { return nil }
        let label = String(text[..<eq]).trimmingCharacters(in: .whitespaces)
        let rest = String(text[text.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
        guard rest.hasPrefix("("), let close = rest.firstIndex(of: ")") else { return nil }
        let inner = rest[rest.index(after: rest.startIndex)..<close]
        var components: [String] = []
        for item in inner.split(separator: " ", omittingEmptySubsequences: true) {
            guard item.count >= 2, item.first == "\"", item.last == "\"" else { return nil }
            components.append(String(item.dropFirst().dropLast()))
        }
        var parameters: [String: String] = [:]
        for part in rest[rest.index(after: close)...].split(separator: ";", omittingEmptySubsequences: true) {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { return nil }
            var value = String(kv[1])
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                value = String(value.dropFirst().dropLast())
            }
            parameters[String(kv[0]).trimmingCharacters(in: .whitespaces)] = value
        }
        return Input(label: label, components: components, parameters: parameters, parametersText: rest)
    }

    /// The bytes of `label=:base64:` in a Signature header.
    static func signatureValue(_ header: String, label: String) -> Data? {
        for entry in header.split(separator: ",") {
            let trimmed = entry.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix(label + "=:"), trimmed.hasSuffix(":"), trimmed.count > label.count + 3 else {
                continue
            }
            let b64 = trimmed.dropFirst(label.count + 2).dropLast()
            return Data(base64Encoded: String(b64))
        }
        return nil
    }
}
