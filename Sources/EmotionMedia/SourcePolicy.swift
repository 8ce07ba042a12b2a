/// Which senders a leg accepts: an allow-list of IPv4 networks (empty = any), and whether the leg
/// locks to the first sender so a stray source cannot take it over.
public struct SourcePolicy: Sendable, Equatable {
    public var allowed: [IPv4Network]
    public var lockToFirstSource: Bool

    public init(allowed: [IPv4Network] = [], lockToFirstSource: Bool = true) {
        self.allowed = allowed
        self.lockToFirstSource = lockToFirstSource
    }

    @inline(__always)
    func allows(_ address: UInt32) -> Bool {
        allowed.isEmpty || allowed.contains { $0.contains(address) }
    }
}

/// An IPv4 network in CIDR form, e.g. "10.1.0.0/16".
public struct IPv4Network: Sendable, Equatable, CustomStringConvertible {
    public let address: UInt32
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first else { return nil }
        let octets = first.split(separator: ".", omittingEmptySubsequences: false).compactMap { UInt8($0) }
        guard octets.count == 4 else { return nil }
        let prefix = parts.count == 2 ? Int(parts[1]) : 32
        guard let prefix, (0...32).contains(prefix) else { return nil }
        let a = octets.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        self.prefix = prefix
        address = a & Self.mask(prefix)
    }

    static func mask(_ prefix: Int) -> UInt32 { prefix == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefix) }

    @inline(__always)
    public func contains(_ a: UInt32) -> Bool { a & Self.mask(prefix) == address }

    public var description: String {
        "\(address >> 24).\((address >> 16) & 0xff).\((address >> 8) & 0xff).\(address & 0xff)/\(prefix)"
    }
}
