import AsyncHTTPClient
import EmotionCore
import Foundation
import NIOCore
import NIOHTTP1

/// The control API from a client's side (loadgen, tests): create and end legs over HTTP/1.1 with
/// AsyncHTTPClient's shared client (connections kept alive).
public struct ControlClient: Sendable {
    public let baseURL: String
    public let token: String?
    private let client: HTTPClient

    public init(baseURL: String, token: String? = nil, client: HTTPClient = .shared) throws(TrafficError) {
        guard let url = URL(string: baseURL), url.host != nil, url.scheme == "http" || url.scheme == "https" else {
            throw TrafficError("'\(baseURL)' is not an http://HOST:PORT URL")
        }
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.client = client
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

    /// The status and body of one request.
    public func request(
        _ method: HTTPMethod, _ path: String, body: String? = nil
    ) async throws(TrafficError) -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), String(buffer: bytes))
        } catch {
            throw TrafficError("no answer from the control API at \(baseURL) for \(method) \(path): \(error)")
        }
    }

    /// POST /v1/legs; throws with the service's answer when it refuses.
    public func createLeg(callID: String, role: String, codec: VoiceCodec?) async throws(TrafficError) -> CreatedLeg {
        var fields = ["\"call_id\":\"\(callID)\"", "\"role\":\"\(role)\""]
        if let codec { fields.append("\"codec\":\"\(codec.rawValue)\"") }
        let (status, body) = try await request(.POST, "/v1/legs", body: "{" + fields.joined(separator: ",") + "}")
        guard status == 201, let leg = try? JSONDecoder().decode(CreatedLeg.self, from: Data(body.utf8)) else {
            throw TrafficError("leg refused: \(status) \(body)")
        }
        return leg
    }

    /// DELETE /v1/legs/ID; true when the service knew the leg.
    @discardableResult
    public func endLeg(_ legID: String) async -> Bool {
        (try? await request(.DELETE, "/v1/legs/\(legID)"))?.status == 200
    }
}
