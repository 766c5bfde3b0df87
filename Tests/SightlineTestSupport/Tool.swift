import Foundation

public struct ToolResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public enum ToolError: Error, CustomStringConvertible {
    case notFound(String)
    case failed(String, ToolResult)

    public var description: String {
        switch self {
        case .notFound(let name): "\(name) not found on PATH (run Scripts/setup)"
        case .failed(let command, let result): "\(command) exited \(result.status): \(result.stderr.suffix(600))"
        }
    }
}

/// Runs external tools (ffmpeg, ffprobe, the sightline CLI) for fixtures and end-to-end tests.
public enum Tool {
    public static func path(_ name: String) throws -> String {
        if name.hasPrefix("/") { return name }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ToolError.notFound(name)
    }

    /// Runs to completion; output is drained concurrently so a chatty tool never blocks.
    @discardableResult
    public static func run(_ name: String, _ arguments: [String], check: Bool = true, in directory: String? = nil) throws -> ToolResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path(name))
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let collector = OutputCollector(out: out, err: err)
        process.waitUntilExit()
        let (stdout, stderr) = collector.wait()
        let result = ToolResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
        if check && result.status != 0 {
            throw ToolError.failed("\(name) \(arguments.joined(separator: " "))", result)
        }
        return result
    }

    /// Starts a process in the background; the caller stops it.
    public static func start(_ name: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path(name))
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }
}

/// Reads both pipes on background threads until EOF.
final class OutputCollector: @unchecked Sendable {
    private let group = DispatchGroup()
    private var outData = Data()
    private var errData = Data()

    init(out: Pipe, err: Pipe) {
        group.enter()
        group.enter()
        DispatchQueue.global().async {
            self.outData = out.fileHandleForReading.readDataToEndOfFile()
            self.group.leave()
        }
        DispatchQueue.global().async {
            self.errData = err.fileHandleForReading.readDataToEndOfFile()
            self.group.leave()
        }
    }

    func wait() -> (String, String) {
        group.wait()
        return (String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}
