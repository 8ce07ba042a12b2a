import EmotionCore

/// How a stream carries audio: PCMU (Twilio, AudioHook) or signed 16-bit little-endian PCM
/// (AudioSocket, mod_audio_fork, jambonz), at a sample rate, mono or interleaved stereo.
public struct StreamAudioFormat: Sendable, Equatable, CustomStringConvertible {
    public enum Encoding: String, Sendable { case pcmu, l16LittleEndian = "l16le" }
    public var encoding: Encoding
    public var sampleRate: Int
    public var channels: Int

    public init(encoding: Encoding, sampleRate: Int, channels: Int) {
        self.encoding = encoding
        self.sampleRate = sampleRate
        self.channels = channels
    }

    /// The codec each channel's leg decodes: PCMU as sent, linear audio as L16/8000 (resampled first).
    public var legCodec: VoiceCodec { encoding == .pcmu ? .pcmu : .l16 }

    public var description: String { "\(encoding.rawValue)/\(sampleRate)/\(channels)" }
}

/// Turns a stream's audio frames into one frame per channel, in the form a stream leg's inbox takes:
/// PCMU bytes as they are (de-interleaved), linear PCM as big-endian L16 at 8 kHz (RTP's L16, so the leg
/// decodes it with the codec RTP uses), resampled with libsoxr when the stream runs at another rate.
/// Buffers grow to the largest frame seen and are reused; one splitter per stream, one thread.
public final class StreamAudioSplitter {
    public let format: StreamAudioFormat
    private var resamplers: [PCMResampler] = []
    private var samples: [Int16] = []
    private var resampled: [Int16] = []
    private var out: [UInt8] = []

    public init(format: StreamAudioFormat) throws(PCMResampler.SetupError) {
        guard format.channels == 1 || format.channels == 2 else { throw .unsupportedRate(format.sampleRate) }
        if format.encoding == .pcmu, format.sampleRate != 8000 { throw .unsupportedRate(format.sampleRate) }
        self.format = format
        if format.encoding == .l16LittleEndian, format.sampleRate != 8000 {
            for _ in 0..<format.channels { resamplers.append(try PCMResampler(inputRate: format.sampleRate)) }
        }
    }

    /// Whether `payload` is a whole number of sample frames; a frame that is not is malformed.
    public func isWhole(_ payload: UnsafeRawBufferPointer) -> Bool {
        let frameBytes = (format.encoding == .pcmu ? 1 : 2) * format.channels
        return !payload.isEmpty && payload.count % frameBytes == 0
    }

    /// Calls `emit(channel, bytes, samples at 8 kHz)` once per channel; false (nothing emitted) when the
    /// payload is not a whole number of sample frames.
    @discardableResult
    public func split(
        _ payload: UnsafeRawBufferPointer,
        _ emit: (_ channel: Int, _ bytes: UnsafeRawBufferPointer, _ samples: Int) -> Void
    ) -> Bool {
        guard isWhole(payload) else { return false }
        let channels = format.channels
        switch format.encoding {
        case .pcmu:
            if channels == 1 { emit(0, payload, payload.count); return true }
            let n = payload.count / channels
            ensure(&out, n)
            for c in 0..<channels {
                out.withUnsafeMutableBytes { o in
                    for i in 0..<n { o[i] = payload[i * channels + c] }
                    emit(c, UnsafeRawBufferPointer(rebasing: o[0..<n]), n)
                }
            }
        case .l16LittleEndian:
            let n = payload.count / (2 * channels)
            ensure(&samples, n)
            for c in 0..<channels {
                samples.withUnsafeMutableBufferPointer { s in
                    for i in 0..<n {
                        let at = 2 * (i * channels + c)
                        s[i] = Int16(bitPattern: UInt16(payload[at]) | UInt16(payload[at + 1]) << 8)
                    }
                }
                var count = n
                if !resamplers.isEmpty {
                    ensure(&resampled, resamplers[c].maxOutput(for: n))
                    count = samples.withUnsafeBufferPointer { s in
                        resampled.withUnsafeMutableBufferPointer { r in
                            resamplers[c].process(UnsafeBufferPointer(rebasing: s[0..<n]), into: r)
                        }
                    }
                }
                guard count > 0 else { continue }
                ensure(&out, 2 * count)
                let source = resamplers.isEmpty ? samples : resampled
                out.withUnsafeMutableBytes { o in
                    source.withUnsafeBufferPointer { s in
                        for i in 0..<count {
                            let v = UInt16(bitPattern: s[i])
                            o[2 * i] = UInt8(v >> 8)
                            o[2 * i + 1] = UInt8(v & 0xff)
                        }
                    }
                    emit(c, UnsafeRawBufferPointer(rebasing: o[0..<(2 * count)]), count)
                }
            }
        }
        return true
    }

    private func ensure<T: FixedWidthInteger>(_ buffer: inout [T], _ count: Int) {
        if buffer.count < count { buffer = [T](repeating: 0, count: count) }
    }
}
