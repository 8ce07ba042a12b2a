import Foundation

/// One labelled clip of a corpus manifest (`path,corpus,speaker,emotion,intensity,upset,duration_s`).
public struct ManifestEntry: Sendable, Equatable {
    public var path: String
    public var corpus: String
    public var speaker: String
    public var emotion: Emotion
    public var upset: Bool
    public var duration: Double
}

public struct ManifestError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

public enum Manifest {
    /// Reads a manifest; rows with unknown emotions are refused with their line number.
    public static func read(_ url: URL) throws -> [ManifestEntry] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ManifestError(description: "\(url.path): cannot read manifest: \(error.localizedDescription)")
        }
        var lines = text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline).map(String.init)
        guard let header = lines.first else { throw ManifestError(description: "\(url.path): manifest is empty") }
        lines.removeFirst()
        let columns = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        func column(_ name: String) throws -> Int {
            guard let i = columns.firstIndex(of: name) else {
                throw ManifestError(description: "\(url.path): manifest has no '\(name)' column (header: \(header))")
            }
            return i
        }
        let path = try column("path"), corpus = try column("corpus"), speaker = try column("speaker")
        let emotion = try column("emotion")
        let upset = columns.firstIndex(of: "upset"), duration = columns.firstIndex(of: "duration_s")
        var entries: [ManifestEntry] = []
        entries.reserveCapacity(lines.count)
        for (n, line) in lines.enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard fields.count >= columns.count else {
                throw ManifestError(
                    description: "\(url.path):\(n + 2): expected \(columns.count) fields, found \(fields.count)")
            }
            guard let e = Emotion(label: fields[emotion]) else {
                throw ManifestError(description: "\(url.path):\(n + 2): unknown emotion '\(fields[emotion])'")
            }
            let isUpset = upset.map { fields[$0] == "1" } ?? e.isUpset
            guard isUpset == e.isUpset else {
                throw ManifestError(
                    description:
                        "\(url.path):\(n + 2): upset=\(fields[upset!]) contradicts emotion '\(fields[emotion])'")
            }
            entries.append(
                ManifestEntry(
                    path: fields[path], corpus: fields[corpus], speaker: fields[speaker], emotion: e,
                    upset: isUpset, duration: duration.flatMap { Double(fields[$0]) } ?? 0))
        }
        return entries
    }
}
