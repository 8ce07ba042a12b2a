import EmotionTestSupport
import Foundation
import Testing
@testable import EmotionCore

@Suite("audio input")
struct AudioInputTests {
    /// A 440 Hz tone, `seconds` long, as 16-bit PCM samples.
    static func tone(rate: Int, seconds: Double, frequency: Double = 440, amplitude: Double = 0.5) -> [Int16] {
        (0..<Int(Double(rate) * seconds)).map {
            Int16(amplitude * 32767 * sin(2 * .pi * frequency * Double($0) / Double(rate)))
        }
    }

    static func pcm16Bytes(_ samples: [Int16]) -> [UInt8] {
        samples.flatMap { [UInt8(truncatingIfNeeded: UInt16(bitPattern: $0)), UInt8(UInt16(bitPattern: $0) >> 8)] }
    }

    @Test("mu-law fixtures decode with spandsp's table")
    func muLaw() throws {
        let file = try WAVFile(contentsOf: Fixtures.url(Fixtures.clips[0]))
        #expect(file.encoding == .muLaw)
        #expect(file.sampleRate == 8000)
        #expect(file.channels == 1)
        let audio = try AudioInput.decode(file)
        #expect(audio.samples.count == file.data.count)
        // ITU G.711: 0xFF and 0x7F are zero, 0x80 is +32124, 0x00 is -32124.
        #expect(G711Law.muLaw.linear(0xFF) == 0)
        #expect(G711Law.muLaw.linear(0x80) == 32124)
        #expect(G711Law.muLaw.linear(0x00) == -32124)
        #expect(G711Law.aLaw.linear(0xD5) == 8)
    }

    @Test("PCM16, float32 and A-law give the same signal; stereo channels can be picked or mixed")
    func formats() throws {
        let left = Self.tone(rate: 8000, seconds: 0.5)
        let right = Self.tone(rate: 8000, seconds: 0.5, frequency: 1000, amplitude: 0.25)
        let mono = WAVFile(encoding: .pcm16, sampleRate: 8000, channels: 1, data: Self.pcm16Bytes(left))
        let parsed = try WAVFile(bytes: mono.serialized())
        let a = try AudioInput.decode(parsed)
        #expect(a.samples.count == 4000)
        #expect(a.samples[10] == Float(left[10]) / 32768)

        let floats = left.flatMap { s -> [UInt8] in
            let bits = (Float(s) / 32768).bitPattern
            return [UInt8(bits & 0xff), UInt8((bits >> 8) & 0xff), UInt8((bits >> 16) & 0xff), UInt8(bits >> 24)]
        }
        let f = try AudioInput.decode(
            try WAVFile(bytes: WAVFile(encoding: .float32, sampleRate: 8000, channels: 1, data: floats).serialized()))
        #expect(f.samples == a.samples)

        let alaw = left.map { G711Law.aLaw.encode($0) }
        let al = try AudioInput.decode(
            try WAVFile(bytes: WAVFile(encoding: .aLaw, sampleRate: 8000, channels: 1, data: alaw).serialized()))
        let worst = zip(al.samples, a.samples).map { abs($0 - $1) }.max()!
        #expect(worst < 0.02, "A-law round trip error \(worst)")

        var interleaved: [Int16] = []
        for (l, r) in zip(left, right) { interleaved += [l, r] }
        let stereo = try WAVFile(
            bytes: WAVFile(encoding: .pcm16, sampleRate: 8000, channels: 2, data: Self.pcm16Bytes(interleaved))
                .serialized())
        let l = try AudioInput.decode(stereo, channel: .index(0))
        let r = try AudioInput.decode(stereo, channel: .index(1))
        let mix = try AudioInput.decode(stereo, channel: .mix)
        #expect(l.samples == a.samples)
        #expect(r.samples[123] == Float(right[123]) / 32768)
        #expect(abs(mix.samples[77] - (l.samples[77] + r.samples[77]) / 2) < 1e-7)
        #expect(throws: AudioFileError.channelOutOfRange(requested: 2, channels: 2)) {
            try AudioInput.decode(stereo, channel: .index(2))
        }
    }

    @Test("other rates are resampled to 8 kHz with libsoxr", arguments: [16000, 44100, 48000, 11025])
    func resampling(rate: Int) throws {
        let file = WAVFile(
            encoding: .pcm16, sampleRate: rate, channels: 1, data: Self.pcm16Bytes(Self.tone(rate: rate, seconds: 1)))
        let audio = try AudioInput.decode(file)
        #expect(audio.sampleRate == 8000)
        #expect(abs(audio.samples.count - 8000) <= 1)
        // The 440 Hz tone survives: its spectral centroid stays near 440 Hz.
        let rows = try FrameFeatureExtractor().extractAll(audio.samples)
        let centroid = rows[rows.count / 2][FrameLayout.centroid]
        #expect(abs(centroid - 440) < 60, "centroid \(centroid)")
        // An 6 kHz tone is above the new Nyquist frequency and must be filtered out, not aliased.
        if rate >= 16000 {
            let high = WAVFile(
                encoding: .pcm16, sampleRate: rate, channels: 1,
                data: Self.pcm16Bytes(Self.tone(rate: rate, seconds: 0.5, frequency: 6000)))
            let filtered = try AudioInput.decode(high)
            let peak = filtered.samples.dropFirst(400).dropLast(400).map(abs).max() ?? 0
            #expect(peak < 0.01, "alias peak \(peak)")
        }
    }

    @Test("bad files get a clear one-line error")
    func badFiles() throws {
        let good = WAVFile(
            encoding: .pcm16, sampleRate: 8000, channels: 1, data: Self.pcm16Bytes(Self.tone(rate: 8000, seconds: 0.1))
        ).serialized()
        func header(tag: UInt16, rate: UInt32, bits: UInt16 = 16) -> [UInt8] {
            var b = good
            b[20] = UInt8(tag & 0xff); b[21] = UInt8(tag >> 8)
            for i in 0..<4 { b[24 + i] = UInt8((rate >> (8 * UInt32(i))) & 0xff) }
            b[34] = UInt8(bits & 0xff); b[35] = UInt8(bits >> 8)
            return b
        }
        let cases: [([UInt8], AudioFileError)] = [
            ([], .empty),
            (Array("hello, this is not audio at all".utf8), .notRIFF),
            (Array("FORM\0\0\0\u{1e}AIFFCOMM".utf8), .looksLikeAIFF),
            (Array(good[0..<6]), .truncated("header ends after 6 bytes")),
            (Array("RIFF\u{4}\0\0\0AVI LIST".utf8), .notWAVE(foundForm: "AVI ")),
            (header(tag: 1, rate: 0), .invalidFormat("sample rate is 0")),
            (header(tag: 1, rate: 2), .invalidFormat("sample rate 2 Hz is implausible")),
            (header(tag: 2, rate: 8000), .unsupportedCodec(formatTag: 2)),
            (header(tag: 85, rate: 8000), .unsupportedCodec(formatTag: 85)),
            (header(tag: 1, rate: 8000, bits: 24), .unsupportedBitDepth(formatTag: 1, bitsPerSample: 24)),
            (Array(good[0..<36]), .missingChunk("data")),
            (Array(good.dropLast(50)), .truncated("'data' chunk declares 1600 bytes but only 1550 follow")),
        ]
        for (bytes, expected) in cases {
            #expect(throws: expected) { try WAVFile(bytes: bytes) }
            #expect(!expected.description.contains("\n"))
        }
        #expect(throws: AudioFileError.self) { try AudioInput.load(URL(fileURLWithPath: "/nonexistent/file.wav")) }
    }
}

@Suite("codecs")
struct CodecTests {
    @Test("G.711 decodes through spandsp and conceals a lost packet with its PLC")
    func g711() throws {
        let decoder = G711Decoder(law: .muLaw)
        let tone = AudioInputTests.tone(rate: 8000, seconds: 0.2)
        var out = [Int16](repeating: 0, count: 480)
        for packet in 0..<10 {
            let payload = tone[packet * 160..<(packet + 1) * 160].map { G711Law.muLaw.encode($0) }
            let n = try payload.withUnsafeBytes { p in
                try out.withUnsafeMutableBufferPointer { try decoder.decode(p, into: $0) }
            }
            #expect(n == 160)
        }
        let concealed = out.withUnsafeMutableBufferPointer { decoder.conceal(160, into: $0) }
        #expect(concealed == 160)
        // The concealment continues the voice rather than going silent.
        let energy = out[0..<160].map { Double($0) * Double($0) }.reduce(0, +) / 160
        #expect(energy.squareRoot() > 1000)
        #expect(throws: PayloadDecodeError.empty) {
            try out.withUnsafeMutableBufferPointer { o in
                try [UInt8]().withUnsafeBytes { try decoder.decode($0, into: o) }
            }
        }
    }

    @Test("Opus round trip at 8 kHz, concealment, FEC and rejected garbage")
    func opus() throws {
        let encoder = try OpusPayloadEncoder(sampleRate: 8000, frameMilliseconds: 20, bitrate: 12000)
        let decoder = try OpusPayloadDecoder(sampleRate: 8000)
        let tone = AudioInputTests.tone(rate: 8000, seconds: 0.4)
        var packets: [[UInt8]] = []
        for i in 0..<20 {
            try tone[i * 160..<(i + 1) * 160].withUnsafeBufferPointer { packets.append(Array(try encoder.encode($0))) }
        }
        var out = [Int16](repeating: 0, count: decoder.maxFrameSamples)
        var decoded: [Int16] = []
        for (i, packet) in packets.enumerated() {
            if i == 10 {
                // Lost: rebuild it from the FEC data in packet 11.
                let n = packets[11].withUnsafeBytes { p in
                    out.withUnsafeMutableBufferPointer { decoder.recover(160, from: p, into: $0) }
                }
                #expect(n == 160)
                decoded += out[0..<n]
                continue
            }
            #expect(packet.withUnsafeBytes { decoder.sampleCount(of: $0) } == 160)
            let n = try packet.withUnsafeBytes { p in
                try out.withUnsafeMutableBufferPointer { try decoder.decode(p, into: $0) }
            }
            #expect(n == 160)
            decoded += out[0..<n]
        }
        let concealed = out.withUnsafeMutableBufferPointer { decoder.conceal(160, into: $0) }
        #expect(concealed == 160)
        #expect(decoded.count == 3200)
        // Level survives the codec (Opus has a few ms of delay, so compare energy, not samples).
        let rms = (decoded[800...].map { Double($0) * Double($0) }.reduce(0, +) / Double(decoded.count - 800))
            .squareRoot()
        #expect(rms > 0.5 * 0.5 * 32767 / 2.squareRoot(), "rms \(rms)")

        // A TOC byte announcing code 3 with a zero frame count is invalid.
        for garbage: [UInt8] in [[0x03, 0x00], [0xff], [0x0b, 0xff, 0xff, 0xff]] {
            #expect(throws: PayloadDecodeError.self) {
                try out.withUnsafeMutableBufferPointer { o in
                    try garbage.withUnsafeBytes { try decoder.decode($0, into: o) }
                }
            }
        }
    }
}
