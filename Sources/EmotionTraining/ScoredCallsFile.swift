import EmotionCore
import Foundation

/// The cross-validation's scored calls (every held-out window's raw upset score, per fold) with the
/// calibration fitted beside them: what the policy search reads. Saved by `train --scored-calls`, so
/// the decision rules can be searched again (`emotiontap tune`) without training the models again.
public struct ScoredCallsFile: Codable, Sendable {
    public static let currentVersion = 1

    struct Window: Codable {
        var start: Double
        var end: Double
        var speech: Double
        var raw: Float?
    }

    struct Call: Codable {
        var kind: String
        var speaker: String
        var stretches: [[Double]]
        var duration: Double
        var channel: String
        var windows: [Window]
    }

    public var version: Int
    /// The training command that scored them.
    public var command: String
    public var calibration: UpsetCalibration
    var folds: [[Call]]

    public init(folds: [[ScoredCall]], calibration: UpsetCalibration, command: String) {
        version = Self.currentVersion
        self.command = command
        self.calibration = calibration
        self.folds = folds.map { fold in
            fold.map { c in
                Call(
                    kind: c.call.kind.rawValue, speaker: c.call.speaker,
                    stretches: c.call.upsetStretches.map { [$0.start, $0.end] }, duration: c.call.duration,
                    channel: c.call.channel,
                    windows: c.windows.map {
                        Window(start: $0.start, end: $0.end, speech: $0.speechSeconds, raw: $0.rawUpset)
                    }
                )
            }
        }
    }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads a file `train --scored-calls` wrote; a wrong version or a malformed call is an error.
    public static func load(_ url: URL) throws -> ScoredCallsFile {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw Invalid(description: "\(url.path): cannot read (\(error.localizedDescription))")
        }
        let file: ScoredCallsFile
        do { file = try JSONDecoder().decode(ScoredCallsFile.self, from: data) } catch {
            throw Invalid(description: "\(url.path): not a scored-calls file (\(error))")
        }
        guard file.version == currentVersion else {
            throw Invalid(
                description: "\(url.path): scored-calls version \(file.version), this build reads \(currentVersion)")
        }
        guard file.folds.count >= 2 else {
            throw Invalid(description: "\(url.path): \(file.folds.count) fold(s); the search needs at least 2")
        }
        for call in file.folds.joined() {
            guard SimulatedCall.Kind(rawValue: call.kind) != nil,
                call.stretches.allSatisfy({ $0.count == 2 && $0[0] <= $0[1] })
            else {
                throw Invalid(
                    description: "\(url.path): call of \(call.speaker) has kind '\(call.kind)' or bad stretches")
            }
        }
        return file
    }

    /// The calls of every fold, as the search replays them.
    public var scoredFolds: [[ScoredCall]] {
        folds.map { fold in
            fold.map { c in
                ScoredCall(
                    call: SimulatedCall(
                        kind: SimulatedCall.Kind(rawValue: c.kind) ?? .calm, speaker: c.speaker,
                        upsetStretches: c.stretches.map { (start: $0[0], end: $0[1]) }, duration: c.duration,
                        channel: c.channel),
                    windows: c.windows.map {
                        ScoredWindow(
                            start: $0.start, end: $0.end, speechSeconds: $0.speech, rawUpset: $0.raw, probabilities: [])
                    })
            }
        }
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }
}
