import EmotionCore
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The control API from a client's side (loadgen, tests): create and end legs over HTTP/1.1 with
/// Foundation's URLSession (one session, connections kept alive).
public struct ControlClient: Sendable {
    public let baseURL: String
    public let token: String?
    private let session: URLSession

    public init(baseURL: String, token: String? = nil) throws(TrafficError) {
        guard let url = URL(string: baseURL), url.host != nil, url.scheme == "http" || url.scheme == "https" else {
            throw TrafficError("'\(baseURL)' is not an http://HOST:PORT URL")
        }
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        configuration.httpMaximumConnectionsPerHost = 1
        session = URLSession(configuration: configuration)
    }

    /// One answer: status, body and headers (names lowercased).
    public struct Answer: Sendable {
        public var status: Int
        public var body: String
        public var headers: [String: String]

        /// The body as a JSON object (empty when it is not one).
        public var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
        }

        /// `error.message` of an API error body.
        public var errorMessage: String { (json["error"] as? [String: Any])?["message"] as? String ?? "" }
    }

    public func request(
        _ method: String, _ path: String, body: String? = nil,
        headers: [String: String] = [:]
    ) async throws(TrafficError) -> Answer {
        guard let url = URL(string: baseURL + path) else { throw TrafficError("'\(path)' is not a valid path") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(body.utf8)
        }
        do {
            let (data, response) = try await session.data(for: request)
            guard let http = response as? HTTPURLResponse else { throw TrafficError("not an HTTP answer") }
            var fields: [String: String] = [:]
            for (name, value) in http.allHeaderFields {
                if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
            }
            return Answer(status: http.statusCode, body: String(decoding: data, as: UTF8.self), headers: fields)
        } catch {
            throw TrafficError(
                "no answer from the control API at \(baseURL) for \(method) \(path): \(error.localizedDescription)")
        }
    }

    /// A leg the service created: its id and the port to stream to.
    public struct CreatedLeg: Decodable, Sendable {
        public struct RTP: Decodable, Sendable {
            public var host: String
            public var port: UInt16
        }
        public var legID: String
        public var rtp: RTP

        enum CodingKeys: String, CodingKey {
            case legID = "leg_id"
            case rtp
        }
    }

    /// POST /v1/legs; throws with the service's answer when it refuses.
    public func createLeg(callID: String, role: String, codec: VoiceCodec?) async throws(TrafficError) -> CreatedLeg {
        var fields = ["\"call_id\":\"\(callID)\"", "\"role\":\"\(role)\""]
        if let codec { fields.append("\"codec\":\"\(codec.rawValue)\"") }
        let answer = try await request("POST", "/v1/legs", body: "{" + fields.joined(separator: ",") + "}")
        guard answer.status == 201, let leg = try? JSONDecoder().decode(CreatedLeg.self, from: Data(answer.body.utf8))
        else {
            throw TrafficError("leg refused: \(answer.status) \(answer.body)")
        }
        return leg
    }

    /// DELETE /v1/legs/ID; true when the service knew the leg.
    @discardableResult
    public func endLeg(_ legID: String) async -> Bool {
        (try? await request("DELETE", "/v1/legs/\(legID)"))?.status == 200
    }
}
