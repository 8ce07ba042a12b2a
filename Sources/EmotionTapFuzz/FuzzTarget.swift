import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionTapServer
import Foundation

/// libFuzzer entry point over the parsers that take outside bytes. The first byte picks the parser:
/// 0 WAV files, 1 RTP packets into a G.711 leg, 2 RTP packets into an Opus leg, 3 YAML config,
/// 4 a control-API body (POST /v1/legs), 5 a raw datagram through the receive session's header checks.
/// EMOTIONTAP_FUZZ_TARGETS (e.g. "0,3,4,5") limits a run to some of them: the first byte then picks
/// among those. Build and run: `make fuzz` (see docs/FUZZING.md).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = UnsafeBufferPointer(start: data + 1, count: size - 1)
    let target = FuzzTargets.enabled.map { $0[Int(data[0]) % $0.count] } ?? Int(data[0] % 6)
    switch target {
    case 0:
        if let file = try? WAVFile(bytes: Array(bytes)) {
            // Keep decoding bounded: resampling huge rates is not what is being fuzzed.
            if file.frameCount < 200_000 { _ = try? AudioInput.decode(file) }
        }
    case 1, 2:
        FuzzLegs.shared.feed(bytes, opus: target == 2)
    case 3:
        _ = try? ServerConfig.load(yaml: String(decoding: bytes, as: UTF8.self), source: "fuzz.yaml")
    case 4:
        if case .success(let request) = LegRequest.parse(Data(bytes)) {
            _ = LegRequest.validIdentifier(request.callID) && LegRequest.validIdentifier(request.role)
        }
    default:
        if let payload = RTPHeader.payload(of: UnsafeRawBufferPointer(bytes), receiveBufferSize: RTPHeader.maxDatagram)
        {
            precondition(payload.count <= bytes.count, "payload outside the datagram")
            if let base = payload.baseAddress, let start = bytes.baseAddress {
                precondition(
                    UnsafeRawPointer(start) <= base && base + payload.count <= UnsafeRawPointer(start + bytes.count))
            }
        }
    }
    return 0
}

enum FuzzTargets {
    /// The targets a run is limited to, from EMOTIONTAP_FUZZ_TARGETS; nil = all six.
    static let enabled: [Int]? = {
        guard let list = ProcessInfo.processInfo.environment["EMOTIONTAP_FUZZ_TARGETS"] else { return nil }
        let targets = list.split(separator: ",").compactMap { Int($0) }.filter { (0..<6).contains($0) }
        return targets.isEmpty ? nil : targets
    }()
}

/// Splits the input into RTP-like packets (2-byte length prefixes) and feeds them to long-lived legs,
/// so state carries across inputs as it does on a real leg.
final class FuzzLegs: @unchecked Sendable {
    // libFuzzer calls from one thread.
    static let shared = FuzzLegs()
    private let g711: LegPipeline
    private let opus: LegPipeline
    private var t = 0.0

    init() {
        let model = try! EmotionModel.builtIn()
        g711 = try! LegPipeline(
            identity: LegIdentity(callID: "f", legID: "g", role: "customer"), model: model, policy: LegPolicy()
        ) { _ in }
        opus = try! LegPipeline(
            identity: LegIdentity(callID: "f", legID: "o", role: "customer"),
            payloadTypes: PayloadTypes(requestedCodec: .opus),
            model: model, policy: LegPolicy()
        ) { _ in }
    }

    func feed(_ bytes: UnsafeBufferPointer<UInt8>, opus useOpus: Bool) {
        var i = 0
        while i + 12 <= bytes.count {
            let length = min(Int(bytes[i]) << 8 | Int(bytes[i + 1]), bytes.count - i - 2)
            let packet = UnsafeBufferPointer(rebasing: bytes[(i + 2)..<(i + 2 + length)])
            i += 2 + length
            guard packet.count >= 12 else { continue }
            t += 0.02
            let view = RTPPacket(
                sequenceNumber: UInt16(packet[2]) << 8 | UInt16(packet[3]),
                timestamp: packet[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) },
                ssrc: packet[8..<12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) },
                payloadType: packet[1] & 0x7f, marker: packet[1] & 0x80 != 0,
                payload: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: packet[12...])), arrival: t)
            (useOpus ? opus : g711).handle(view)
        }
    }
}

#if !FUZZING
    /// Without libFuzzer: replays input files through the same entry point (the regression runner the
    /// tests use for the committed corpus and any crash found).
    @main
    struct FuzzReplay {
        static func main() throws {
            var count = 0
            for path in CommandLine.arguments.dropFirst() {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
                let files =
                    isDirectory.boolValue
                    ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { "\(path)/\($0)" }
                    : [path]
                for file in files {
                    let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
                    guard !data.isEmpty else { continue }
                    _ = data.withUnsafeBufferPointer { fuzzOne($0.baseAddress!, $0.count) }
                    count += 1
                }
            }
            print("replayed \(count) inputs")
        }
    }
#endif

#if FUZZING
    // SwiftPM links executables with `main` aliased to `<Target>_main`; under -sanitize=fuzzer that entry
    // hands control to libFuzzer's driver (whose own main is then not pulled in).
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt

    @_cdecl("EmotionTapFuzz_main")
    func fuzzerEntry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
        var count = argc
        var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
        return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzOne(data, size) }
    }
#endif
