import ArgumentParser
import EmotionCore
import EmotionMedia
import EmotionTraffic
import EmotionUDP
import Foundation

struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Stream a WAV file as RTP to HOST:PORT at real-time pace, to test a setup or feed the demo."
    )

    @Argument(help: "WAV file (any format the reader takes; resampled to 8 kHz).")
    var file: String
    @Option(help: "Destination HOST:PORT.")
    var to: String
    @Option(help: "Codec: pcmu, pcma, g722, l16 (8 kHz), l16-16000 or opus.")
    var codec: VoiceCodec = .pcmu
    @Option(help: "Milliseconds of audio per packet (10-60; Opus: 10, 20, 40 or 60).")
    var ptime: Int = 20
    @Option(help: "RTP payload type for a codec without a static one (Opus, L16).")
    var payloadType: Int = 111
    @Option(help: "Send SRTP with this SDES key, e.g. \"AES_CM_128_HMAC_SHA1_80 inline:BASE64\".")
    var srtp: String?
    @Flag(help: "Send as fast as possible instead of at real-time pace.")
    var fast = false
    @Option(help: "Drop this fraction of packets (testing concealment).")
    var loss: Double = 0
    @Option(help: "Mean length of a loss burst in packets (Gilbert model; 1 = independent losses).")
    var burst: Double = 1
    @Option(help: "Swap this fraction of packets with their successor (testing reordering).")
    var reorder: Double = 0
    @Option(help: "Delay each packet by a random 0...this many milliseconds (network jitter: later packets overtake).")
    var jitter: Double = 0
    @Option(help: "Random seed for --loss and --reorder.")
    var seed: UInt64 = 1
    @OptionGroup var channel: ChannelOption

    func validate() throws {
        guard (10...60).contains(ptime), ptime % 10 == 0 else {
            throw ValidationError("--ptime must be 10, 20, 30, 40, 50 or 60")
        }
        if codec == .opus, ![10, 20, 40, 60].contains(ptime) {
            throw ValidationError("Opus --ptime must be 10, 20, 40 or 60")
        }
        guard (0..<1).contains(loss), (0..<1).contains(reorder) else {
            throw ValidationError("--loss and --reorder must be in 0..<1")
        }
        guard burst >= 1, burst <= 100 else { throw ValidationError("--burst must be in 1...100 packets") }
        guard (0...2000).contains(jitter) else { throw ValidationError("--jitter must be in 0...2000 ms") }
        guard jitter == 0 || (reorder == 0 && !fast) else {
            throw ValidationError("--jitter works at real-time pace, without --reorder or --fast")
        }
        guard (96...127).contains(payloadType) else {
            throw ValidationError("--payload-type must be dynamic (96-127)")
        }
        do { _ = try UDPEndpoint(to) } catch { throw ValidationError("--to: \(error)") }
        _ = try channel.selection()
        if let srtp { do { _ = try SDESCrypto(attribute: srtp) } catch { throw ValidationError("--srtp: \(error)") } }
    }

    func run() throws {
        let selection = try channel.selection()
        let audio = try orExit(file) { try AudioInput.load(URL(fileURLWithPath: file), channel: selection) }
        let sender = try orExit {
            RTPFileSender(
                frames: try PayloadFrames(
                    audio, codec: codec, frameMilliseconds: ptime, dynamicPayloadType: UInt8(payloadType)),
                destination: try UDPEndpoint(to),
                impairments: Impairments(loss: loss, burst: burst, reorder: reorder, jitterMilliseconds: jitter),
                fast: fast, seed: seed,
                srtp: try srtp.map { k throws(SDESCrypto.Problem) in try SDESCrypto(attribute: k) })
        }
        let report = try orExit { try sender.run() }
        StandardError.line(
            String(
                format: "send: %d packets to %@ (%@, %d ms), %d dropped, %d overtaken, %.1f s of audio",
                report.sent, to, codec.rawValue, ptime, report.dropped, report.overtaken, audio.duration))
    }
}

extension VoiceCodec: ExpressibleByArgument {}
