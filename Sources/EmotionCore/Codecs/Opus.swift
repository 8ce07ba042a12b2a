import COpus

/// Opus decoding through libopus, straight to the analysis rate, with Opus's own concealment and in-band FEC.
public final class OpusPayloadDecoder: PayloadDecoder {
    public let sampleRate: Int
    private let decoder: OpaquePointer
    /// Longest Opus packet: 120 ms.
    public var maxFrameSamples: Int { sampleRate * 120 / 1000 }

    public init(sampleRate: Int = 8000) throws {
        guard [8000, 12000, 16000, 24000, 48000].contains(sampleRate) else {
            throw PayloadDecodeError.invalidOpus(code: OPUS_BAD_ARG)
        }
        var error: Int32 = 0
        guard let d = opus_decoder_create(Int32(sampleRate), 1, &error), error == OPUS_OK else {
            throw PayloadDecodeError.invalidOpus(code: error)
        }
        self.sampleRate = sampleRate
        decoder = d
    }

    deinit { opus_decoder_destroy(decoder) }

    public func sampleCount(of payload: UnsafeRawBufferPointer) -> Int? {
        guard !payload.isEmpty, let base = payload.bindMemory(to: UInt8.self).baseAddress else { return nil }
        let n = opus_packet_get_nb_samples(base, Int32(payload.count), Int32(sampleRate))
        return n > 0 ? Int(n) : nil
    }

    public func decode(
        _ payload: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>
    ) throws(PayloadDecodeError) -> Int {
        guard !payload.isEmpty else { throw .empty }
        guard payload.count <= 1275 * 3 else { throw .tooLarge(bytes: payload.count) }
        let bytes = payload.bindMemory(to: UInt8.self)
        let n = opus_decode(decoder, bytes.baseAddress, Int32(bytes.count), output.baseAddress!, Int32(output.count), 0)
        guard n >= 0 else { throw .invalidOpus(code: n) }
        return Int(n)
    }

    public func conceal(_ count: Int, into output: UnsafeMutableBufferPointer<Int16>) -> Int {
        // Opus conceals in multiples of 2.5 ms; ask for exactly the gap, capped by the buffer.
        let quantum = sampleRate / 400
        let n = min(count, output.count) / quantum * quantum
        guard n > 0 else { return 0 }
        let got = opus_decode(decoder, nil, 0, output.baseAddress!, Int32(n), 0)
        return got > 0 ? Int(got) : 0
    }

    public func recover(
        _ count: Int, from next: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>
    ) -> Int {
        let quantum = sampleRate / 400
        let n = min(count, output.count) / quantum * quantum
        guard n > 0, !next.isEmpty else { return 0 }
        let bytes = next.bindMemory(to: UInt8.self)
        // decode_fec=1 reconstructs the previous frame from the redundancy carried by `next`;
        // without FEC data libopus falls back to concealment itself.
        let got = opus_decode(decoder, bytes.baseAddress, Int32(bytes.count), output.baseAddress!, Int32(n), 1)
        return got > 0 ? Int(got) : conceal(count, into: output)
    }
}

/// Opus encoding (used by the sender, the load generator and training-time channel augmentation).
public final class OpusPayloadEncoder {
    public let sampleRate: Int
    public let frameSamples: Int
    private let encoder: OpaquePointer
    private var packet = [UInt8](repeating: 0, count: 1500)

    public init(
        sampleRate: Int = 8000, frameMilliseconds: Int = 20, bitrate: Int = 12_000, fec: Bool = true,
        expectedLossPercent: Int = 5,
        complexity: Int = 10
    ) throws {
        var error: Int32 = 0
        guard let e = opus_encoder_create(Int32(sampleRate), 1, OPUS_APPLICATION_VOIP, &error), error == OPUS_OK else {
            throw PayloadDecodeError.invalidOpus(code: error)
        }
        encoder = e
        self.sampleRate = sampleRate
        frameSamples = sampleRate * frameMilliseconds / 1000
        _ = et_opus_encoder_set_bitrate(e, Int32(bitrate))
        _ = et_opus_encoder_set_signal_voice(e)
        _ = et_opus_encoder_set_complexity(e, Int32(complexity))
        _ = et_opus_encoder_set_inband_fec(e, fec ? 1 : 0)
        _ = et_opus_encoder_set_packet_loss_perc(e, Int32(expectedLossPercent))
    }

    deinit { opus_encoder_destroy(encoder) }

    /// Encodes exactly `frameSamples` samples into one packet.
    public func encode(_ pcm: UnsafeBufferPointer<Int16>) throws -> ArraySlice<UInt8> {
        precondition(pcm.count == frameSamples, "Opus frames must be \(frameSamples) samples")
        let n = packet.withUnsafeMutableBufferPointer { out in
            opus_encode(encoder, pcm.baseAddress!, Int32(frameSamples), out.baseAddress!, Int32(out.count))
        }
        guard n > 0 else { throw PayloadDecodeError.invalidOpus(code: n) }
        return packet[0..<Int(n)]
    }
}
