import Foundation

/// The sample encodings the reader understands.
public enum WAVEncoding: Sendable, Equatable {
    case pcm16
    case float32
    case muLaw
    case aLaw
}

/// A parsed WAVE file: its format and the raw bytes of its `data` chunk.
public struct WAVFile: Sendable {
    public var encoding: WAVEncoding
    public var sampleRate: Int
    public var channels: Int
    public var data: [UInt8]

    public var bytesPerSample: Int {
        switch encoding {
        case .pcm16: return 2
        case .float32: return 4
        case .muLaw, .aLaw: return 1
        }
    }

    public var frameCount: Int { data.count / (bytesPerSample * channels) }
    public var duration: Double { Double(frameCount) / Double(sampleRate) }

    public init(encoding: WAVEncoding, sampleRate: Int, channels: Int, data: [UInt8]) {
        self.encoding = encoding
        self.sampleRate = sampleRate
        self.channels = channels
        self.data = data
    }

    public init(contentsOf url: URL) throws(AudioFileError) {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: url)
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw .unreadable(reason)
        }
        try self.init(bytes: [UInt8](bytes))
    }

    /// Parses a RIFF/WAVE image. Tolerates odd chunk padding and unknown chunks; rejects what it cannot decode.
    public init(bytes: [UInt8]) throws(AudioFileError) {
        if bytes.isEmpty { throw .empty }
        if bytes.count >= 4, bytes[0..<4].elementsEqual("FORM".utf8) { throw .looksLikeAIFF }
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8) else {
            if bytes.count < 12, bytes.prefix(4).elementsEqual("RIFF".utf8.prefix(bytes.count)) {
                throw .truncated("header ends after \(bytes.count) bytes")
            }
            throw .notRIFF
        }
        guard bytes[8..<12].elementsEqual("WAVE".utf8) else {
            throw .notWAVE(
                foundForm: String(decoding: bytes[8..<12].map { (0x20...0x7e).contains($0) ? $0 : 0x3f }, as: UTF8.self)
            )
        }

        var format: (tag: UInt16, channels: Int, rate: Int, blockAlign: Int, bits: Int)?
        var dataRange: Range<Int>?
        var offset = 12
        while offset + 8 <= bytes.count {
            let id = String(decoding: bytes[offset..<offset + 4], as: UTF8.self)
            let size = Int(Self.le32(bytes, offset + 4))
            let bodyStart = offset + 8
            let available = bytes.count - bodyStart
            if id == "fmt " {
                guard size >= 16, available >= 16 else {
                    throw .truncated("'fmt ' chunk is \(min(size, available)) bytes, needs 16")
                }
                var tag = Self.le16(bytes, bodyStart)
                let channels = Int(Self.le16(bytes, bodyStart + 2))
                let rate = Int(Self.le32(bytes, bodyStart + 4))
                let blockAlign = Int(Self.le16(bytes, bodyStart + 12))
                let bits = Int(Self.le16(bytes, bodyStart + 14))
                if tag == 0xFFFE {
                    // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
                    guard size >= 40, available >= 40 else {
                        throw .truncated("extensible 'fmt ' chunk shorter than 40 bytes")
                    }
                    tag = Self.le16(bytes, bodyStart + 24)
                }
                format = (tag, channels, rate, blockAlign, bits)
            } else if id == "data" {
                // A streamed WAV may carry size 0 or 0xFFFFFFFF: take what is there.
                let length = (size == 0 || size == 0xFFFF_FFFF) ? available : size
                if length > available {
                    throw .truncated("'data' chunk declares \(length) bytes but only \(available) follow")
                }
                dataRange = bodyStart..<bodyStart + length
                if format != nil { break }
            }
            offset = bodyStart + size + (size & 1)
            if size == 0xFFFF_FFFF { break }
        }

        guard let format else { throw .missingChunk("fmt ") }
        guard let dataRange else { throw .missingChunk("data") }
        guard format.rate > 0 else { throw .invalidFormat("sample rate is 0") }
        // A tiny rate would make a few kilobytes resample into hundreds of megabytes at 8 kHz (found fuzzing).
        guard (1000...384_000).contains(format.rate) else {
            throw .invalidFormat("sample rate \(format.rate) Hz is implausible")
        }
        guard format.channels > 0 else { throw .invalidFormat("channel count is 0") }
        guard format.channels <= 16 else { throw .invalidFormat("\(format.channels) channels") }

        let encoding: WAVEncoding
        switch (format.tag, format.bits) {
        case (1, 16): encoding = .pcm16
        case (3, 32): encoding = .float32
        case (7, 8): encoding = .muLaw
        case (6, 8): encoding = .aLaw
        case (1, _), (3, _), (6, _), (7, _):
            throw .unsupportedBitDepth(formatTag: format.tag, bitsPerSample: format.bits)
        default: throw .unsupportedCodec(formatTag: format.tag)
        }
        self.encoding = encoding
        self.sampleRate = format.rate
        self.channels = format.channels
        let frameBytes = (format.bits / 8) * format.channels
        // Ignore a trailing partial frame rather than reject the file.
        let usable = (dataRange.count / frameBytes) * frameBytes
        if usable == 0 { throw .empty }
        self.data = Array(bytes[dataRange.lowerBound..<dataRange.lowerBound + usable])
    }

    /// Serialises to a canonical WAVE file (used for test fixtures and synthesized audio).
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(44 + data.count)
        let (tag, bits): (UInt16, Int) =
            switch encoding {
            case .pcm16: (1, 16)
            case .float32: (3, 32)
            case .muLaw: (7, 8)
            case .aLaw: (6, 8)
            }
        func put16(_ v: UInt16) { out.append(UInt8(v & 0xff)); out.append(UInt8(v >> 8)) }
        func put32(_ v: UInt32) {
            for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8((v >> UInt32(s)) & 0xff)) }
        }
        out += Array("RIFF".utf8); put32(UInt32(36 + data.count + (data.count & 1)))
        out += Array("WAVE".utf8)
        out += Array("fmt ".utf8); put32(16)
        put16(tag); put16(UInt16(channels)); put32(UInt32(sampleRate))
        put32(UInt32(sampleRate * channels * bits / 8)); put16(UInt16(channels * bits / 8)); put16(UInt16(bits))
        out += Array("data".utf8); put32(UInt32(data.count))
        out += data
        if data.count & 1 == 1 { out.append(0) }
        return out
    }

    static func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    static func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
}
