import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 server on loopback that speaks the OpenAI-compatible API as model servers do,
/// for tests: it records every request (to check its form) and answers as a script says —
/// normally, slowly, with 429 and `Retry-After`, with 500, with malformed JSON, or by
/// dropping the connection. Written on plain sockets so a test can make it misbehave in ways
/// a server framework would not (a connection closed mid-request).
public final class FakeModelServer: @unchecked Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var headers: [String: String]
        public var body: Data

        public func header(_ name: String) -> String? { headers[name.lowercased()] }
        public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }

        /// The parts of a multipart/form-data body by field name (nil when the body is not one),
        /// with each part's filename and content type, as a transcription server reads them.
        public var form: [String: (data: Data, filename: String?, type: String?)]? {
            guard let type = header("Content-Type"), type.hasPrefix("multipart/form-data"),
                  let boundary = type.components(separatedBy: "boundary=").last, !boundary.isEmpty else { return nil }
            let delimiter = Data("--\(boundary)".utf8), headerEnd = Data("\r\n\r\n".utf8)
            var fields: [String: (Data, String?, String?)] = [:]
            var rest = body[...]
            while let start = rest.range(of: delimiter) {
                rest = rest[start.upperBound...]
                if rest.starts(with: Data("--".utf8)) { return fields }   // the closing delimiter
                guard let split = rest.range(of: headerEnd), let next = rest.range(of: delimiter) else { return nil }
                let head = String(decoding: rest[rest.startIndex..<split.lowerBound], as: UTF8.self)
                var content = rest[split.upperBound..<next.lowerBound]
                if content.suffix(2) == Data("\r\n".utf8) { content = content.dropLast(2) }
                func attribute(_ name: String) -> String? {
                    guard let range = head.range(of: "\(name)=\"") else { return nil }
                    return String(head[range.upperBound...].prefix { $0 != "\"" })
                }
                let partType = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-type:") }
                    .map { $0.dropFirst("content-type:".count).trimmingCharacters(in: .whitespaces) }
                guard let name = attribute("name") else { return nil }
                fields[name] = (Data(content), attribute("filename"), partType)
                rest = rest[next.lowerBound...]
            }
            return nil
        }
    }

    public enum Reply: Sendable {
        case answer(String, delay: Double = 0)
        case status(Int, body: String = "{\"error\": {\"message\": \"scripted\"}}", headers: [String: String] = [:], delay: Double = 0)
        case raw(String)
        case drop
    }

    public let port: Int
    public var url: String { "http://127.0.0.1:\(port)/v1" }
    private let listener: Int32
    private let script: @Sendable (Request, Int) -> Reply
    private let log = Mutex<[Request]>([])
    private let stopped = Atomic<Bool>(false)

    /// `script(request, n)`: the reply to the n-th request (0-based).
    public init(script: @escaping @Sendable (Request, Int) -> Reply) throws {
        self.script = script
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 64) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    public var requests: [Request] { log.withLock { $0 } }

    public func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    deinit { if !stopped.load(ordering: .relaxed) { stop() } }

    private func acceptLoop() {
        while !stopped.load(ordering: .relaxed) {
            let client = accept(listener, nil, nil)
            if client < 0 { if stopped.load(ordering: .relaxed) { return } else { continue } }
            Thread.detachNewThread { [self] in serve(client) }
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var buffer = Data()
        while true {
            // Headers.
            var headerEnd: Range<Data.Index>?
            while headerEnd == nil {
                headerEnd = buffer.range(of: Data("\r\n\r\n".utf8))
                if headerEnd == nil { guard read(fd, into: &buffer) else { return } }
            }
            guard let end = headerEnd, let head = String(data: buffer[..<end.lowerBound], encoding: .utf8) else { return }
            var lines = head.components(separatedBy: "\r\n")
            let requestLine = lines.removeFirst().split(separator: " ")
            guard requestLine.count >= 2 else { return }
            var headers: [String: String] = [:]
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            buffer.removeSubrange(..<end.upperBound)
            while buffer.count < length { guard read(fd, into: &buffer) else { return } }
            let body = buffer.prefix(length)
            buffer.removeSubrange(..<(buffer.startIndex + length))
            let request = Request(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers, body: Data(body))
            let index = log.withLock { log -> Int in
                log.append(request)
                return log.count - 1
            }
            let response: String
            switch script(request, index) {
            case .drop:
                return
            case .raw(let text):
                response = text
            case .answer(let text, let delay):
                if delay > 0 { Thread.sleep(forTimeInterval: delay) }
                let model = (request.json?["model"] as? String) ?? "unknown"
                let payload: [String: Any] = ["id": "chatcmpl-\(index)", "object": "chat.completion", "model": model,
                                              "choices": [["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": "stop"]]]
                let json = String(data: (try? JSONSerialization.data(withJSONObject: payload)) ?? Data(), encoding: .utf8) ?? "{}"
                response = Self.http(200, json, [:])
            case .status(let code, let body, let extra, let delay):
                if delay > 0 { Thread.sleep(forTimeInterval: delay) }
                response = Self.http(code, body, extra)
            }
            var bytes = Array(response.utf8)
            var sent = 0
            while sent < bytes.count {
                let n = bytes.withUnsafeMutableBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                sent += n
            }
        }
    }

    private func read(_ fd: Int32, into buffer: inout Data) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    static func http(_ code: Int, _ body: String, _ headers: [String: String]) -> String {
        var text = "HTTP/1.1 \(code) \(code == 200 ? "OK" : "Scripted")\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return text + "\r\n" + body
    }
}
