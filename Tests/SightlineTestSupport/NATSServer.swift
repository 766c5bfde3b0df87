import Foundation

/// A real nats-server (Debian's package, installed by Scripts/setup) on loopback with JetStream
/// on and its store in a temporary folder. `restart()` keeps the store and the port, as an
/// operator restarting the server would.
public final class NATSServer: @unchecked Sendable {
    public let port: Int
    public let store: String
    private var process: Process?
    private let extra: [String]

    public var url: String { "nats://127.0.0.1:\(port)" }

    public init(extra: [String] = []) throws {
        port = freePort()
        store = NSTemporaryDirectory() + "sightline-nats-\(getpid())-\(port)"
        self.extra = extra
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        try start()
    }

    public func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Tool.path("nats-server"))
        process.arguments = ["-js", "-a", "127.0.0.1", "-p", "\(port)", "-sd", store] + extra
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        try waitUntilAccepting(port: port, name: "nats-server", timeout: 10)
    }

    /// SIGKILL (a crash) or SIGTERM (an operator's restart: the server flushes its store).
    public func kill(signal: Int32 = SIGKILL) {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }

    public func restart(after seconds: Double = 0, signal: Int32 = SIGTERM) throws {
        kill(signal: signal)
        if seconds > 0 { Thread.sleep(forTimeInterval: seconds) }
        try start()
    }

    public func stop() {
        kill()
        try? FileManager.default.removeItem(atPath: store)
    }

    deinit { stop() }

}

/// Waits until a server on loopback `port` accepts TCP connections (a fixed sleep was too short
/// for python's http.server under the whole suite's load).
public func waitUntilAccepting(port: Int, name: String, timeout: Double) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if accepts(port: port) { return }
        Thread.sleep(forTimeInterval: 0.05)
    }
    throw ToolError.failed("\(name) on port \(port)", ToolResult(status: -1, stdout: "", stderr: "did not accept connections within \(Int(timeout)) s"))
}

private func accepts(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
