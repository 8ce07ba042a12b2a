import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Reads the service's JSONL event log from a stored position, following its rotation (the file is
/// renamed to `.1`, `.2`... and a new one started): the position names the file by inode, so a
/// rename loses nothing, and a file still open is read to its end even after it is deleted.
/// Only whole lines are taken; a line being written is read on a later call.
public final class EventLogTailer {
    public let path: String
    public let keep: Int
    private var descriptor: Int32 = -1
    private var inode: UInt64 = 0
    private var offset: Int64 = 0
    /// Times the stored position's file was gone (rotated past `keep` before it was stored): the
    /// tail restarted at the oldest file left, and events in between may be missing.
    public private(set) var gaps = 0
    /// Lines longer than any event (a damaged file): skipped.
    public private(set) var overlongLines = 0
    private var chunk = [UInt8](repeating: 0, count: 1 << 20)

    public init(path: String, keep: Int, from position: LogPosition?) {
        self.path = path
        self.keep = max(0, keep)
        let files = existingFiles()
        if let position, let match = files.first(where: { $0.inode == position.inode }) {
            open(match.path, at: min(position.offset, match.size))
        } else {
            if position != nil { gaps += 1 }
            // The oldest file first: on a first start the whole log there is goes in.
            if let oldest = files.first { open(oldest.path, at: 0) }
        }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    public var position: LogPosition { LogPosition(inode: inode, offset: offset) }

    private struct LogFile {
        let path: String
        let inode: UInt64
        let size: Int64
    }

    /// The log's files, oldest first (`.keep` ... `.1`, then the live one).
    private func existingFiles() -> [LogFile] {
        let names = (1...max(1, keep)).reversed().map { "\(path).\($0)" } + [path]
        return names.compactMap { name in
            var st = stat()
            // Regular files only: a log pointed at a device (/dev/null, /dev/full) has nothing to replay.
            guard stat(name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
            return LogFile(path: name, inode: UInt64(st.st_ino), size: Int64(st.st_size))
        }
    }

    private func open(_ file: String, at start: Int64) {
        if descriptor >= 0 { close(descriptor) }
        descriptor = Glibc.open(file, O_RDONLY | O_CLOEXEC)
        var st = stat()
        if descriptor >= 0, fstat(descriptor, &st) == 0 {
            inode = UInt64(st.st_ino)
            offset = start
        } else {
            descriptor = -1
        }
    }

    /// Up to `maxLines` whole lines from the position on, moving past them; empty when there is
    /// nothing new. Moves on to the next file when the current one was rotated and is read through.
    public func read(maxLines: Int) -> [Substring] {
        var lines: [Substring] = []
        for _ in 0..<(keep + 2) {
            if descriptor < 0 {
                guard let first = existingFiles().first else { return lines }
                open(first.path, at: 0)
                if descriptor < 0 { return lines }
            }
            readWholeLines(into: &lines, max: maxLines)
            if lines.count >= maxLines || !advanceIfRotated() { break }
        }
        return lines
    }

    private func readWholeLines(into lines: inout [Substring], max: Int) {
        while lines.count < max {
            let n = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
            guard n > 0 else { return }
            var start = 0
            for i in 0..<n where chunk[i] == UInt8(ascii: "\n") {
                if i > start { lines.append(Substring(String(decoding: chunk[start..<i], as: UTF8.self))) }
                start = i + 1
                if lines.count >= max { break }
            }
            if start == 0 {
                // No newline in a whole chunk: not an event log line. Skip it.
                guard n == chunk.count else { return }
                overlongLines += 1
                offset += Int64(n)
                continue
            }
            offset += Int64(start)
            // Short read: the end of what is written (maybe half a line, taken next time).
            if n < chunk.count { return }
        }
    }

    /// When the file read through is no longer the live one, opens the next newer file; false when
    /// the current file is the live one (wait for more).
    private func advanceIfRotated() -> Bool {
        var st = stat()
        if stat(path, &st) == 0, UInt64(st.st_ino) == inode { return false }
        let files = existingFiles()
        if let mine = files.firstIndex(where: { $0.inode == inode }) {
            guard mine + 1 < files.count else { return false }
            open(files[mine + 1].path, at: 0)
        } else if let oldest = files.first {
            // Ours was deleted after being read through: every file left is newer.
            open(oldest.path, at: 0)
        } else {
            return false
        }
        return true
    }

    /// Bytes in the log not read yet (the current file's rest and every newer file).
    public var backlogBytes: Int64 {
        let files = existingFiles()
        guard let mine = files.firstIndex(where: { $0.inode == inode }) else {
            return files.reduce(0) { $0 + $1.size }
        }
        return max(0, files[mine].size - offset) + files[(mine + 1)...].reduce(0) { $0 + $1.size }
    }
}
