import Foundation
import Synchronization

/// A long-running process whose stdout is read line by line while it runs (the CLI with
/// --events), so a test can wait for conditions on the lines seen so far.
public final class LineStreamingProcess: Sendable {
    private let process: Process
    private let lines = Mutex<[String]>([])
    private let stderrText = Mutex<String>("")
    private let done = DispatchSemaphore(value: 0)

    public init(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Tool.path(executable))
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        self.process = process
        try process.run()
        let outHandle = out.fileHandleForReading
        let errHandle = err.fileHandleForReading
        Thread.detachNewThread { [self] in
            var buffer = Data()
            while true {
                let chunk = outHandle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                    buffer.removeSubrange(buffer.startIndex...newline)
                    lines.withLock { $0.append(line) }
                }
            }
            done.signal()
        }
        Thread.detachNewThread { [self] in
            while true {
                let chunk = errHandle.availableData
                if chunk.isEmpty { break }
                stderrText.withLock { $0 += String(decoding: chunk, as: UTF8.self) }
            }
        }
    }

    public var output: [String] { lines.withLock { $0 } }
    public var errorOutput: String { stderrText.withLock { $0 } }
    public var isRunning: Bool { process.isRunning }
    public var pid: Int32 { process.processIdentifier }

    /// Polls until `condition` holds on the JSON events seen so far, or `timeout` passes.
    @discardableResult
    public func waitFor(timeout: Double, _ condition: ([[String: Any]]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(events) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return condition(events)
    }

    public var events: [[String: Any]] {
        output.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    public func signal(_ signal: Int32) { Foundation.kill(process.processIdentifier, signal) }

    /// Waits for exit (and for stdout to drain); returns the exit status, or nil on timeout.
    public func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { return nil }
        _ = done.wait(timeout: .now() + 2)
        return process.terminationStatus
    }

    public func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// ffmpeg pushing a synthetic H.264 MPEG-TS stream in real time (-re) to `url`.
public func startLiveSender(url: String, size: String = "320x240", rate: Int = 25, seconds: Int = 120) throws -> Process {
    try Tool.start("ffmpeg", [
        "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
        "-i", "testsrc2=size=\(size):rate=\(rate)", "-t", "\(seconds)",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "\(rate)",
        "-pix_fmt", "yuv420p", "-f", "mpegts", url,
    ])
}

public func stopProcess(_ process: Process, signal: Int32 = SIGKILL) {
    if process.isRunning { kill(process.processIdentifier, signal) }
    process.waitUntilExit()
}

/// A loopback port that was free a moment ago (bound then released).
public func freePort(udp: Bool = false) -> Int {
    let fd = socket(AF_INET, Int32(udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> Bool in
            bind(fd, sa, length) == 0 && getsockname(fd, sa, &length) == 0
        }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : Int.random(in: 30000..<40000)
}
