import EmotionCore
import EmotionMedia

/// Audio cut into RTP payloads of one codec: what the senders put on the wire, encoded once.
public struct PayloadFrames: Sendable {
    public let codec: VoiceCodec
    public let payloadType: UInt8
    public let frameMilliseconds: Int
    public let payloads: [[UInt8]]

    /// The RTP timestamp step per packet, in the codec's clock.
    public var timestampStep: UInt32 { UInt32(codec.rtpClockRate / 1000 * frameMilliseconds) }

    /// `audio` at 8 kHz in `frameMilliseconds` packets; the last partial frame is padded with
    /// silence when `padLastFrame`, else dropped. Codecs without a static payload type (Opus, L16) go
    /// out as `dynamicPayloadType`.
    public init(
        _ audio: MonoAudio, codec: VoiceCodec, frameMilliseconds: Int = 20, dynamicPayloadType: UInt8 = 111,
        padLastFrame: Bool = true
    ) throws(TrafficError) {
        self.codec = codec
        self.frameMilliseconds = frameMilliseconds
        payloadType = codec.staticPayloadType ?? dynamicPayloadType
        var samples = audio.samples
        if codec == .l16Wide {
            do { samples = try AudioInput.resample(samples, from: 8000, to: 16_000) } catch {
                throw TrafficError("cannot resample to 16 kHz for L16: \(error)")
            }
        }
        let pcm = PCM.int16(samples)
        let frame = (codec == .l16Wide ? 16 : 8) * frameMilliseconds
        let g722 = codec == .g722 ? G722Encoder() : nil
        let encoder: OpusPayloadEncoder?
        do {
            encoder =
                codec == .opus
                ? try OpusPayloadEncoder(sampleRate: 8000, frameMilliseconds: frameMilliseconds, bitrate: 16000) : nil
        } catch {
            throw TrafficError("cannot set up the Opus encoder: \(error)")
        }
        var out: [[UInt8]] = []
        var chunk = [Int16](repeating: 0, count: frame)
        let end = padLastFrame ? pcm.count : pcm.count - frame
        for offset in stride(from: 0, to: max(0, end), by: frame) {
            for i in 0..<frame { chunk[i] = offset + i < pcm.count ? pcm[offset + i] : 0 }
            switch codec {
            case .pcmu: out.append(chunk.map { G711Law.muLaw.encode($0) })
            case .pcma: out.append(chunk.map { G711Law.aLaw.encode($0) })
            case .g722: out.append(g722!.encode(chunk))
            case .l16, .l16Wide:
                // Network byte order (RFC 3551).
                out.append(chunk.flatMap { [UInt8(truncatingIfNeeded: $0 >> 8), UInt8(truncatingIfNeeded: $0)] })
            case .opus:
                do { out.append(try chunk.withUnsafeBufferPointer { Array(try encoder!.encode($0)) }) } catch {
                    throw TrafficError("Opus encoding failed: \(error)")
                }
            }
        }
        payloads = out
    }
}
