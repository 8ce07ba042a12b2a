/// A traffic tool's runtime failure (a socket, the control API, a file): one sentence with the reason.
public struct TrafficError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
