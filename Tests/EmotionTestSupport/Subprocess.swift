import Foundation

/// What a finished child process printed.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// The one subprocess runner of the tests: runs `executable` to completion (killed after
/// `timeout` seconds), reading both pipes before waiting so a full pipe cannot block the child.
public func run(
    _ executable: URL, _ arguments: [String], timeout: Double = 60, directory: URL? = nil
) throws -> CommandResult {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    if let directory { p.currentDirectoryURL = directory }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let killer = DispatchWorkItem { if p.isRunning { p.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    let errData = ThreadSafeData()
    let errReader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
    errReader.start()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    killer.cancel()
    errData.wait()
    return CommandResult(
        status: p.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: errData.value, as: UTF8.self))
}

/// `emotiontap ARGS`, as a `CommandResult`.
public func runEmotionTap(_ arguments: [String], timeout: Double = 60) throws -> CommandResult {
    try run(Repo.executable, arguments, timeout: timeout)
}

/// `emotiontap ARGS` as (status, stdout, stderr).
public func emotiontap(_ arguments: [String], timeout: Double = 60) throws -> (Int32, String, String) {
    let r = try runEmotionTap(arguments, timeout: timeout)
    return (r.status, r.stdout, r.stderr)
}

/// Validates a JSONL file of events against the protocol schema with tools/validate_events.py.
public func validateAgainstSchema(_ jsonl: URL) throws -> (Bool, String) {
    let r = try run(
        URL(fileURLWithPath: "/usr/bin/env"), ["python3", Repo.validator.path, Repo.schema.path, jsonl.path])
    return (r.status == 0, r.stdout + r.stderr)
}

/// Data handed from a reader thread to the waiting one.
final class ThreadSafeData: @unchecked Sendable {
    // `data` is written once by the reader, then read after `done` is signalled.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    func set(_ d: Data) {
        data = d
        done.signal()
    }
    func wait() { done.wait() }
    var value: Data { data }
}
