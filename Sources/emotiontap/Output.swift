import ArgumentParser
import EmotionCore
import EmotionProtocol
import Foundation

/// Buffered stdout: per-frame rows are many and small.
final class StandardOutput {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }
    deinit { flush() }

    func write(_ line: String) {
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0a)
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(1, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

enum StandardError {
    static func line(_ s: String) {
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }
}

/// Runs `body`; a runtime failure prints "emotiontap: [CONTEXT: ]REASON" on stderr and exits with
/// status 2. (ArgumentParser's ValidationError is for wrong arguments: it prints the usage text.)
func orExit<T>(_ context: String? = nil, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let exit as ExitCode { throw exit } catch { throw fail(context, error) }
}

func orExit<T>(_ context: String? = nil, _ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let exit as ExitCode { throw exit } catch { throw fail(context, error) }
}

private func fail(_ context: String?, _ error: any Error) -> ExitCode {
    StandardError.line("emotiontap: " + (context.map { "\($0): " } ?? "") + "\(error)")
    return ExitCode(2)
}

/// Number formatting for JSON/CSV: shortest round-trip form, never NaN or infinity (JSON has neither).
func jsonNumber(_ v: Float) -> String {
    v.isFinite ? "\(v)" : "0"
}

func jsonNumber(_ v: Double) -> String {
    v.isFinite ? "\(v)" : "0"
}

/// Quotes a string for JSON (the event writer's quoting).
func jsonString(_ s: String) -> String {
    JSON.string(s).serialized
}

enum FrameRowFormatter {
    static let extendedKeys: [(String, Int)] = [
        ("energy_db", FrameLayout.energyDB), ("pitch_hz", FrameLayout.pitchHz), ("voicing", FrameLayout.voicing),
        ("rolloff", FrameLayout.rolloff), ("flatness", FrameLayout.flatness), ("slope", FrameLayout.slope),
        ("flux", FrameLayout.flux), ("low_high_db", FrameLayout.lowHighRatio),
    ]

    static func json(_ f: FrameView, extended: Bool, file: String?) -> String {
        var s = "{"
        if let file { s += "\"file\": \(jsonString(file)), " }
        s += "\"t\": \(jsonNumber(f.time)), \"rms\": \(jsonNumber(f.rms)), \"zcr\": \(jsonNumber(f.zcr)), "
        s += "\"centroid\": \(jsonNumber(f.centroid)), "
        s += "\"mfcc\": [" + f.mfcc.map(jsonNumber).joined(separator: ", ") + "], "
        s += "\"chroma\": [" + f.chroma.map(jsonNumber).joined(separator: ", ") + "]"
        if extended {
            for (key, index) in extendedKeys { s += ", \"\(key)\": \(jsonNumber(f.values[index]))" }
        }
        return s + "}"
    }

    static func csvHeader(extended: Bool, fileColumn: Bool) -> String {
        var cols = fileColumn ? ["file"] : []
        cols += ["t", "rms", "zcr", "centroid"]
        cols += (0..<FeatureConfig.mfccCount).map { "mfcc\($0)" }
        cols += (0..<FeatureConfig.chromaCount).map { "chroma\($0)" }
        if extended { cols += extendedKeys.map(\.0) }
        return cols.joined(separator: ",")
    }

    static func csv(_ f: FrameView, extended: Bool, file: String?) -> String {
        var cols: [String] = []
        if let file {
            cols.append(
                file.contains(",") || file.contains("\"")
                    ? "\"" + file.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : file)
        }
        cols += [jsonNumber(f.time), jsonNumber(f.rms), jsonNumber(f.zcr), jsonNumber(f.centroid)]
        cols += f.mfcc.map(jsonNumber)
        cols += f.chroma.map(jsonNumber)
        if extended { cols += extendedKeys.map { jsonNumber(f.values[$0.1]) } }
        return cols.joined(separator: ",")
    }
}

/// Loads each file at `sampleRate` and hands it to `body`; a file that cannot be read gets one line
/// on stderr naming it and the problem, and the rest go on. Returns how many failed.
func forEachAudioFile(
    _ files: [String], channel: ChannelSelection, sampleRate: Int,
    _ body: (String, MonoAudio) throws -> Void
) rethrows -> Int {
    var failures = 0
    for file in files {
        let audio: MonoAudio
        do {
            audio = try AudioInput.load(URL(fileURLWithPath: file), channel: channel, sampleRate: sampleRate)
        } catch {
            StandardError.line("emotiontap: \(file): \(error.description)")
            failures += 1
            continue
        }
        try body(file, audio)
    }
    return failures
}
