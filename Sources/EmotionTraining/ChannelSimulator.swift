import Foundation
import EmotionCore

/// Plays clean audio through what a phone leg does to it: gain, background noise, a codec
/// (G.711 mu-law or an Opus round trip at 8-16 kbit/s) and packet loss filled by that codec's
/// own concealment. Uses the same decoders as the live path.
public struct ChannelSimulator: Sendable {
    public enum Codec: Sendable, Equatable {
        case pcmu
        case opus(bitrate: Int)
    }

    public var gainDB: Float
    /// Noise level relative to the clip's speech level (dB); nil for none.
    public var noiseSNR: Float?
    public var codec: Codec
    public var lossRate: Double
    public var seed: UInt64

    public init(gainDB: Float = 0, noiseSNR: Float? = nil, codec: Codec = .pcmu, lossRate: Double = 0, seed: UInt64 = 0)
    {
        self.gainDB = gainDB
        self.noiseSNR = noiseSNR
        self.codec = codec
        self.lossRate = lossRate
        self.seed = seed
    }

    /// A random channel in the training ranges: -24 to +12 dB (quiet lines are the common problem: at
    /// -20 dB G.711's quantisation noise is 20 dB closer to the speech), mild noise, Opus 8-16 kbit/s
    /// or G.711, 5-10 % loss.
    public static func random(using rng: inout SplitMix64) -> ChannelSimulator {
        let gain = Float(Double.random(in: -24...12, using: &rng))
        let noise: Float? = Bool.random(using: &rng) ? Float(Double.random(in: 20...35, using: &rng)) : nil
        let codec: Codec =
            Bool.random(using: &rng) ? .opus(bitrate: [8000, 12000, 16000].randomElement(using: &rng)!) : .pcmu
        let loss = Double.random(in: 0.05...0.10, using: &rng)
        return ChannelSimulator(gainDB: gain, noiseSNR: noise, codec: codec, lossRate: loss, seed: rng.next())
    }

    public var summary: String {
        let c: String =
            switch codec {
            case .pcmu: "pcmu";
            case .opus(let b): "opus\(b / 1000)k"
            }
        return "\(c) gain \(Int(gainDB.rounded())) dB loss \(Int((lossRate * 100).rounded())) %"
            + (noiseSNR.map { " snr \(Int($0)) dB" } ?? "")
    }

    /// Returns the signal as the listener would decode it, 8 kHz.
    public func apply(_ clean: [Float]) throws -> [Float] {
        var rng = SplitMix64(seed: seed)
        let gain = Float(pow(10, Double(gainDB) / 20))
        var signal = clean.map { $0 * gain }
        if let snr = noiseSNR {
            let speechPower = signal.reduce(Float(0)) { $0 + $1 * $1 } / Float(max(1, signal.count))
            let noiseRMS = (speechPower / Float(pow(10, Double(snr) / 10))).squareRoot()
            // Sum of uniforms: cheap, deterministic, close enough to Gaussian for background hiss.
            for i in signal.indices {
                let u = Float(
                    Double.random(in: -1...1, using: &rng) + Double.random(in: -1...1, using: &rng)
                        + Double.random(in: -1...1, using: &rng))
                signal[i] += noiseRMS * u
            }
        }
        let pcm = PCM.int16(signal)
        let frame = 160
        var out: [Float] = []
        out.reserveCapacity(pcm.count + frame)
        let decoder: any PayloadDecoder
        let encoder: OpusPayloadEncoder?
        switch codec {
        case .pcmu:
            decoder = G711Decoder(law: .muLaw)
            encoder = nil
        case .opus(let bitrate):
            decoder = try OpusPayloadDecoder(sampleRate: 8000)
            encoder = try OpusPayloadEncoder(
                sampleRate: 8000, frameMilliseconds: 20, bitrate: bitrate, fec: true,
                expectedLossPercent: Int(lossRate * 100), complexity: 4)
        }
        var decoded = [Int16](repeating: 0, count: 960)
        var packet = [Int16](repeating: 0, count: frame)
        var start = 0
        var previousLost = false
        while start < pcm.count {
            for i in 0..<frame { packet[i] = start + i < pcm.count ? pcm[start + i] : 0 }
            let payload: [UInt8]
            if let encoder {
                payload = try packet.withUnsafeBufferPointer { Array(try encoder.encode($0)) }
            } else {
                payload = packet.map { G711Law.muLaw.encode($0) }
            }
            // Bursty loss: a lost packet makes the next one likelier to go too.
            let lost = Double.random(in: 0..<1, using: &rng) < (previousLost ? min(0.5, lossRate * 4) : lossRate)
            var n = 0
            if lost {
                n = decoded.withUnsafeMutableBufferPointer { decoder.conceal(frame, into: $0) }
            } else {
                n = try payload.withUnsafeBytes { p in
                    try decoded.withUnsafeMutableBufferPointer { try decoder.decode(p, into: $0) }
                }
            }
            previousLost = lost
            for i in 0..<n { out.append(Float(decoded[i]) / 32768) }
            start += frame
        }
        out.removeLast(max(0, out.count - clean.count))
        return out
    }
}
