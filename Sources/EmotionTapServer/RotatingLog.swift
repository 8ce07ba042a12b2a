import Foundation

/// Appends lines to a file, rotating to `.1`, `.2`... when it passes `maxBytes`.
final class RotatingLog {
    let path: String
    let maxBytes: Int
    let keep: Int
    private var handle: FileHandle
    private var size: Int

    init(path: String, maxBytes: Int, keep: Int) throws {
        self.path = path
        self.maxBytes = maxBytes
        self.keep = keep
        (handle, size) = try Self.open(path)
    }

    private static func open(_ path: String) throws -> (FileHandle, Int) {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw ConfigError("cannot create event log \(path)")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw ConfigError("cannot open event log \(path)") }
        let end = try h.seekToEnd()
        return (h, Int(end))
    }

    func append(_ line: String) throws {
        let data = Data((line + "\n").utf8)
        try handle.write(contentsOf: data)
        size += data.count
        if size >= maxBytes { try rotate() }
    }

    func flush() throws { try handle.synchronize() }

    private func rotate() throws {
        try handle.close()
        let fm = FileManager.default
        for i in stride(from: keep - 1, through: 1, by: -1) {
            let from = "\(path).\(i)", to = "\(path).\(i + 1)"
            if fm.fileExists(atPath: from) {
                try? fm.removeItem(atPath: to)
                try fm.moveItem(atPath: from, toPath: to)
            }
        }
        try? fm.removeItem(atPath: "\(path).1")
        try fm.moveItem(atPath: path, toPath: "\(path).1")
        (handle, size) = try Self.open(path)
    }
}
