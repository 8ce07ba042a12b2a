import CSoxr
import Foundation

/// Which channel of a multi-channel file to analyse.
public enum ChannelSelection: Sendable, Equatable {
    /// Average all channels.
    case mix
    /// One channel, 0-based (stereo call recordings often carry the customer left, the agent right).
    case index(Int)
}

/// Mono audio at a known rate, samples scaled to [-1, 1).
public struct MonoAudio: Sendable {
    public var samples: [Float]
    public var sampleRate: Int
    public var duration: Double { Double(samples.count) / Double(sampleRate) }

    public init(samples: [Float], sampleRate: Int) {
        self.samples = samples
        self.sampleRate = sampleRate
    }
}

/// Reads audio files into mono audio at the analysis rate.
public enum AudioInput {
    /// Loads `url`, picks or mixes channels and resamples to `sampleRate` with libsoxr.
    public static func load(
        _ url: URL, channel: ChannelSelection = .mix, sampleRate: Int = 8000
    ) throws(AudioFileError) -> MonoAudio {
        let file = try WAVFile(contentsOf: url)
        return try decode(file, channel: channel, sampleRate: sampleRate)
    }

    public static func decode(
        _ file: WAVFile, channel: ChannelSelection = .mix, sampleRate: Int = 8000
    ) throws(AudioFileError) -> MonoAudio {
        if case .index(let i) = channel, !(0..<file.channels).contains(i) {
            throw .channelOutOfRange(requested: i, channels: file.channels)
        }
        let mono = monoSamples(file, channel: channel)
        guard file.sampleRate != sampleRate else { return MonoAudio(samples: mono, sampleRate: sampleRate) }
        return MonoAudio(samples: try resample(mono, from: file.sampleRate, to: sampleRate), sampleRate: sampleRate)
    }

    /// Linear samples of one channel (or the mix), scaled like librosa: int16 / 32768.
    static func monoSamples(_ file: WAVFile, channel: ChannelSelection) -> [Float] {
        let frames = file.frameCount
        let channels = file.channels
        var out = [Float](repeating: 0, count: frames)
        file.data.withUnsafeBytes { raw in
            func sample(_ index: Int) -> Float {
                switch file.encoding {
                case .pcm16:
                    return Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: Int16.self)))
                        / 32768
                case .float32:
                    let v = Float(
                        bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
                    return v.isFinite ? v : 0
                case .muLaw:
                    return Float(G711Law.muLaw.linear(raw[index])) / 32768
                case .aLaw:
                    return Float(G711Law.aLaw.linear(raw[index])) / 32768
                }
            }
            switch channel {
            case .index(let c):
                for f in 0..<frames { out[f] = sample(f * channels + c) }
            case .mix:
                let scale = 1 / Float(channels)
                for f in 0..<frames {
                    var sum: Float = 0
                    for c in 0..<channels { sum += sample(f * channels + c) }
                    out[f] = channels == 1 ? sum : sum * scale
                }
            }
        }
        return out
    }

    /// Band-limited resampling with libsoxr (high quality).
    public static func resample(
        _ input: [Float], from inputRate: Int, to outputRate: Int
    ) throws(AudioFileError) -> [Float] {
        guard !input.isEmpty else { return [] }
        let expected = Int((Double(input.count) * Double(outputRate) / Double(inputRate)).rounded())
        var output = [Float](repeating: 0, count: expected + 16)
        var produced = 0
        var io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
        var quality = soxr_quality_spec(UInt(SOXR_HQ), 0)
        var runtime = soxr_runtime_spec(1)
        let error: soxr_error_t? = input.withUnsafeBufferPointer { inp in
            output.withUnsafeMutableBufferPointer { out in
                soxr_oneshot(
                    Double(inputRate), Double(outputRate), 1,
                    inp.baseAddress, inp.count, nil,
                    out.baseAddress, out.count, &produced,
                    &io, &quality, &runtime)
            }
        }
        if let error { throw .resampling(String(cString: error)) }
        output.removeLast(output.count - min(produced, output.count))
        return output
    }
}
