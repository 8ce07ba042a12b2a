import EmotionHistory
import Foundation
import Testing

@Suite("event log tailer")
struct EventLogTailerTests {
    @Test("whole lines only; a half-written line is taken once it is complete")
    func partialLines() throws {
        let dir = try Scratch()
        try dir.append(["one", "two"], to: "ev.jsonl")
        let h = try FileHandle(forWritingAtPath: dir.path("ev.jsonl")).unwrap()
        try h.seekToEnd()
        try h.write(contentsOf: Data("thr".utf8))
        let tail = EventLogTailer(path: dir.path("ev.jsonl"), keep: 3, from: nil)
        #expect(tail.read(maxLines: 10) == ["one", "two"])
        #expect(tail.read(maxLines: 10).isEmpty)
        try h.write(contentsOf: Data("ee\nfour\n".utf8))
        try h.close()
        #expect(tail.read(maxLines: 1) == ["three"])
        #expect(tail.read(maxLines: 10) == ["four"])
        #expect(tail.position.offset == Int64("one\ntwo\nthree\nfour\n".utf8.count))
    }

    @Test("follows rotation by inode: the rest of the renamed file, then the new one; resumes from a position")
    func rotation() throws {
        let dir = try Scratch()
        let log = dir.path("ev.jsonl")
        try dir.append(["a1", "a2"], to: "ev.jsonl")
        let tail = EventLogTailer(path: log, keep: 3, from: nil)
        #expect(tail.read(maxLines: 1) == ["a1"])
        let saved = tail.position
        // The publisher rotates: the live file becomes .1 (then .2) and new ones start.
        try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
        try dir.append(["b1"], to: "ev.jsonl")
        try FileManager.default.moveItem(atPath: log + ".1", toPath: log + ".2")
        try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
        try dir.append(["c1", "c2"], to: "ev.jsonl")
        #expect(tail.read(maxLines: 10) == ["a2", "b1", "c1", "c2"])
        #expect(tail.backlogBytes == 0)
        // A new reader from the saved position finds the file under its new name.
        let again = EventLogTailer(path: log, keep: 3, from: saved)
        #expect(again.gaps == 0)
        #expect(again.read(maxLines: 10) == ["a2", "b1", "c1", "c2"])
    }

    @Test("a stored position whose file is gone is a counted gap; reading restarts at the oldest file")
    func gap() throws {
        let dir = try Scratch()
        try dir.append(["x1"], to: "ev.jsonl")
        let tail = EventLogTailer(path: dir.path("ev.jsonl"), keep: 2, from: LogPosition(inode: 1, offset: 99))
        #expect(tail.gaps == 1)
        #expect(tail.read(maxLines: 10) == ["x1"])
    }
}
