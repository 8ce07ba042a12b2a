import EmotionCore
import Foundation

/// Paths in the repository and the audio fixtures every test target shares.
public enum Repo {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    public static let schema = root.appendingPathComponent("config/event-schema.json")
    public static let validator = root.appendingPathComponent("tools/validate_events.py")

    /// A product built next to the test bundle (`emotiontap`, `EmotionTapFuzz`).
    public static func product(_ name: String) -> URL {
        var dir = Bundle.main.bundleURL
        for _ in 0..<3 where !FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path) {
            dir.deleteLastPathComponent()
        }
        let candidate = dir.appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        return root.appendingPathComponent(".build/debug/\(name)")
    }

    public static var executable: URL { product("emotiontap") }
}

public enum Fixtures {
    public static var directory: URL { Bundle.module.resourceURL!.appendingPathComponent("Fixtures") }
    /// librosa's frames for the clips (tools/librosa_goldens.py).
    public static var goldens: URL { Bundle.module.resourceURL!.appendingPathComponent("Goldens") }
    public static let clips = ["crema-1009_DFA_ANG_XX.wav", "crema-1011_IEO_NEU_XX.wav", "crema-1015_ITH_SAD_XX.wav"]

    public static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// The built-in model with the golden vectors' frame network fused in (the built-in one, if it has one).
    public static func modelWithFrameNet() throws -> EmotionModel {
        var model = try EmotionModel.builtIn()
        guard model.frameNet == nil else { return model }
        struct Golden: Decodable { var net: FrameNet }
        let data = try Data(contentsOf: goldens.appendingPathComponent("frame-network/frame-net.json"))
        model.frameNet = try JSONDecoder().decode(Golden.self, from: data).net
        model.frameNetWeight = 0.5
        return model
    }

    public static func audio(_ name: String) throws -> MonoAudio { try AudioInput.load(url(name)) }

    /// `../shared/corpora` beside the repository (or EMOTIONTAP_CORPORA), when present.
    public static var corpora: URL? {
        let candidates = [
            ProcessInfo.processInfo.environment["EMOTIONTAP_CORPORA"].map { URL(fileURLWithPath: $0) },
            Repo.root.deletingLastPathComponent().appendingPathComponent("shared/corpora"),
        ].compactMap { $0 }
        return candidates.first {
            FileManager.default.fileExists(atPath: $0.appendingPathComponent("manifest.csv").path)
        }
    }

    /// A WAV file of `clip` repeated `times` times (mu-law stays mu-law, so nothing is re-quantised).
    public static func repeated(_ clip: String, times: Int, into directory: URL) throws -> URL {
        let file = try WAVFile(contentsOf: url(clip))
        var data: [UInt8] = []
        for _ in 0..<times { data += file.data }
        let out = directory.appendingPathComponent("\(times)x-\(clip)")
        try Data(
            WAVFile(encoding: file.encoding, sampleRate: file.sampleRate, channels: file.channels, data: data)
                .serialized()
        ).write(to: out)
        return out
    }
}

/// The training code's seeded generator, so random tests replay exactly.
public typealias SeededGenerator = SplitMix64

/// A temporary directory removed when the value goes away.
public final class TemporaryDirectory {
    public let url: URL

    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("emotiontap-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    public func write(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let u = url.appendingPathComponent(name)
        try Data(bytes).write(to: u)
        return u
    }
}
