/// Why an audio file could not be read. The description is one line, meant to follow the file name.
public enum AudioFileError: Error, Equatable, CustomStringConvertible {
    case unreadable(String)
    case empty
    case notRIFF
    case notWAVE(foundForm: String)
    case looksLikeAIFF
    case missingChunk(String)
    case truncated(String)
    case invalidFormat(String)
    case unsupportedCodec(formatTag: UInt16)
    case unsupportedBitDepth(formatTag: UInt16, bitsPerSample: Int)
    case channelOutOfRange(requested: Int, channels: Int)
    case resampling(String)

    public var description: String {
        switch self {
        case .unreadable(let why): return "cannot read file: \(why)"
        case .empty: return "file is empty"
        case .notRIFF: return "not a RIFF/WAVE file"
        case .notWAVE(let form): return "RIFF file of form '\(form)', not WAVE"
        case .looksLikeAIFF: return "this is an AIFF file, not WAVE (convert it, e.g. sox in.aiff out.wav)"
        case .missingChunk(let id): return "no '\(id)' chunk"
        case .truncated(let what): return "truncated: \(what)"
        case .invalidFormat(let why): return "invalid format: \(why)"
        case .unsupportedCodec(let tag):
            return
                "unsupported codec (WAVE format tag \(tag)); supported: PCM 16-bit (1), float 32-bit (3), A-law (6), "
                + "mu-law (7)"
        case .unsupportedBitDepth(let tag, let bits):
            return "unsupported sample size: \(bits) bits for format tag \(tag)"
        case .channelOutOfRange(let requested, let channels):
            return "channel \(requested) requested but the file has \(channels) channel\(channels == 1 ? "" : "s")"
        case .resampling(let why): return "resampling failed: \(why)"
        }
    }
}
