import CZeroMQ
import Foundation
import SightlineCore

/// A ZeroMQ error with the operation that failed.
public struct ZMQError: UserFacingError {
    public let operation: String
    public let code: Int32

    init(_ operation: String) {
        self.operation = operation
        self.code = zmq_errno()
    }

    public var message: String { "\(operation): \(String(cString: zmq_strerror(code)))" }
    var isTryAgain: Bool { code == EAGAIN }
}

/// Owns a ZeroMQ context. Sockets keep their context alive.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private var terminated = false

    public init() throws {
        guard let handle = zmq_ctx_new() else { throw ZMQError("zmq_ctx_new") }
        self.handle = handle
    }

    /// Waits until every socket of the context is closed and their queued messages have left
    /// (or their linger time ran out). Called by the owner once its sockets are closed; a
    /// context only terminated in deinit loses what is still queued if the process exits
    /// while the context is still referenced.
    public func terminate() {
        guard !terminated else { return }
        terminated = true
        zmq_ctx_term(handle)
    }

    deinit { terminate() }
}

/// Owns one ZeroMQ socket. Not thread-safe (ZeroMQ sockets never are): use it from one
/// thread or serial queue at a time.
public final class ZMQSocket: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private let context: ZMQContext
    private var isClosed = false

    public init(context: ZMQContext, type: Int32) throws {
        guard let handle = zmq_socket(context.handle, type) else { throw ZMQError("zmq_socket") }
        self.handle = handle
        self.context = context
    }

    deinit { close(lingerMilliseconds: 0) }

    public func bind(_ address: String) throws {
        guard zmq_bind(handle, address) == 0 else { throw ZMQError("bind \(address)") }
    }

    public func connect(_ address: String) throws {
        guard zmq_connect(handle, address) == 0 else { throw ZMQError("connect \(address)") }
    }

    public func set(_ option: Int32, _ value: Int32) throws {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) == 0 else { throw ZMQError("setsockopt \(option)") }
    }

    public func set(_ option: Int32, int64 value: Int64) throws {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size) == 0 else { throw ZMQError("setsockopt \(option)") }
    }

    public func set(_ option: Int32, bytes: [UInt8]) throws {
        let result = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, bytes.count) }
        guard result == 0 else { throw ZMQError("setsockopt \(option)") }
    }

    /// The endpoint actually bound (e.g. the port chosen for `tcp://127.0.0.1:*`).
    public var lastEndpoint: String? {
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return nil }
        return String(cString: buffer)
    }

    /// Sends the parts as one multipart message. Returns false when `dontWait` and the socket
    /// would block (for XPUB with NODROP: a subscriber's queue is at its high-water mark).
    public func send(parts: [[UInt8]], dontWait: Bool) throws -> Bool {
        for (index, part) in parts.enumerated() {
            var flags: Int32 = index < parts.count - 1 ? ZMQ_SNDMORE : 0
            if dontWait { flags |= ZMQ_DONTWAIT }
            let result = part.withUnsafeBytes { zmq_send(handle, $0.baseAddress, part.count, flags) }
            if result < 0 {
                let error = ZMQError("send")
                // A multipart message is atomic: failing on the first part sends nothing.
                if error.isTryAgain && index == 0 { return false }
                throw error
            }
        }
        return true
    }

    /// Receives one multipart message, waiting at most `timeout` seconds (nil: forever).
    public func receive(timeout: Double?) throws -> [[UInt8]]? {
        // Try without waiting first: under load a message is usually there, and a poll
        // system call per message would cap throughput.
        if let parts = try receiveParts(flags: ZMQ_DONTWAIT) { return parts }
        if let timeout {
            var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
            let ready = zmq_poll(&item, 1, Int(timeout * 1000))
            if ready < 0 {
                if zmq_errno() == EINTR { return nil }
                throw ZMQError("poll")
            }
            if ready == 0 { return nil }
            // Readable can still mean nothing to read (a peer's message refused after the poll
            // woke us): never block past the timeout.
            return try receiveParts(flags: ZMQ_DONTWAIT)
        }
        return try receiveParts(flags: 0)
    }

    /// One multipart message; nil when `flags` has DONTWAIT and nothing is waiting.
    private func receiveParts(flags: Int32) throws -> [[UInt8]]? {
        var parts: [[UInt8]] = []
        while true {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            if zmq_msg_recv(&message, handle, parts.isEmpty ? flags : 0) < 0 {
                let code = zmq_errno()
                if parts.isEmpty && (code == EINTR || code == EAGAIN) { return nil }
                throw ZMQError("receive")
            }
            let size = zmq_msg_size(&message)
            let data = zmq_msg_data(&message)
            parts.append(size > 0 && data != nil ? Array(UnsafeRawBufferPointer(start: data, count: size)) : [])
            if zmq_msg_more(&message) == 0 { break }
        }
        return parts
    }

    /// Closes the socket; queued outgoing messages get up to `lingerMilliseconds` to leave.
    public func close(lingerMilliseconds: Int32) {
        guard !isClosed else { return }
        isClosed = true
        var linger = lingerMilliseconds
        zmq_setsockopt(handle, ZMQ_LINGER, &linger, MemoryLayout<Int32>.size)
        zmq_close(handle)
    }
}
