import Foundation
@testable import EmotionCore
import EmotionTraining

enum Fixtures {
    static var directory: URL { Bundle.module.resourceURL!.appendingPathComponent("Fixtures") }
    static var goldens: URL { Bundle.module.resourceURL!.appendingPathComponent("Goldens") }
    static let clips = ["crema-1009_DFA_ANG_XX.wav", "crema-1011_IEO_NEU_XX.wav", "crema-1015_ITH_SAD_XX.wav"]

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func audio(_ name: String) throws -> MonoAudio {
        try AudioInput.load(url(name))
    }

    /// `../shared/corpora` beside the repository, when present.
    static var corpora: URL? {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }
        let candidates = [
            ProcessInfo.processInfo.environment["EMOTIONTAP_CORPORA"].map { URL(fileURLWithPath: $0) },
            dir.deletingLastPathComponent().appendingPathComponent("shared/corpora"),
        ].compactMap { $0 }
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("manifest.csv").path) }
    }

    /// The built `emotiontap` executable next to the test bundle.
    static var executable: URL {
        var dir = Bundle.module.bundleURL.deletingLastPathComponent()
        if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("emotiontap").path) {
            dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".build/debug")
        }
        return dir.appendingPathComponent("emotiontap")
    }
}

/// The training code's seeded generator, so random tests replay exactly.
typealias SeededGenerator = SplitMix64

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

func runEmotionTap(_ arguments: [String]) throws -> CommandResult {
    let process = Process()
    process.executableURL = Fixtures.executable
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read before waiting so a full pipe cannot block the child.
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus,
                         stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self))
}

/// A temporary directory removed when the value goes away.
final class TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("emotiontap-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let u = url.appendingPathComponent(name)
        try Data(bytes).write(to: u)
        return u
    }
}
