import CZeroMQ
import Foundation

/// Publishes bus messages on one XPUB socket bound/connected to every endpoint.
///
/// XPUB rather than PUB, for two reasons: it sees subscriptions arrive, so a batch job can wait
/// for its subscribers before sending (the slow-joiner problem), and with XPUB_NODROP a full
/// subscriber queue is reported to us instead of ZeroMQ dropping silently, so every drop is
/// counted (or, with `.block`, waited out).
public final class BusPublisher: @unchecked Sendable {
    public enum WhenFull: Sendable, Equatable {
        /// Count the message as dropped and go on (live).
        case drop
        /// Wait up to this many seconds for room, then drop (batch: lose nothing if possible).
        case block(Double)
    }

    public struct Options: Sendable {
        public var highWaterMark: Int32
        public var lingerMilliseconds: Int32
        public var whenFull: WhenFull
        public init(highWaterMark: Int32 = 1000, lingerMilliseconds: Int32 = 5000, whenFull: WhenFull = .block(5)) {
            self.highWaterMark = highWaterMark
            self.lingerMilliseconds = lingerMilliseconds
            self.whenFull = whenFull
        }
    }

    public let endpoints: [BusEndpoint]
    public let options: Options
    private let context: ZMQContext
    /// A context the publisher made itself is terminated by `close`.
    private let ownsContext: Bool
    private let socket: ZMQSocket
    public private(set) var subscriptionsSeen = 0
    /// Connected peers, from the socket monitor (handshakes minus disconnects).
    public private(set) var peers = 0
    private var lastPeerChange = Date.distantPast
    private let monitor: ZMQSocket
    public private(set) var sent = 0
    public private(set) var dropped = 0
    private var sendsSinceSubscriptionCheck = 0

    public init(endpoints: [BusEndpoint], options: Options = Options(), context: ZMQContext? = nil) throws {
        self.endpoints = endpoints
        self.options = options
        self.context = try context ?? ZMQContext()
        ownsContext = context == nil
        socket = try ZMQSocket(context: self.context, type: ZMQ_XPUB)
        try socket.set(ZMQ_SNDHWM, options.highWaterMark)
        try socket.set(ZMQ_XPUB_NODROP, 1)
        try socket.set(ZMQ_XPUB_VERBOSE, 1)  // every subscriber's subscription, not just the first
        try socket.set(ZMQ_LINGER, options.lingerMilliseconds)
        // A socket monitor tells connections apart: XPUB shows subscriptions, not who sent them.
        let monitorAddress = "inproc://sightline-monitor-\(UUID().uuidString)"
        guard zmq_socket_monitor(socket.handle, monitorAddress, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) == 0 else {
            throw BusError.socket("cannot monitor the publisher socket: \(ZMQError("zmq_socket_monitor"))")
        }
        monitor = try ZMQSocket(context: self.context, type: ZMQ_PAIR)
        try monitor.connect(monitorAddress)
        for endpoint in endpoints {
            guard endpoint.role == .pub else { throw BusError.badEndpoint(endpoint.description, "a publisher needs a pub endpoint") }
            do {
                switch endpoint.action {
                case .bind: try socket.bind(endpoint.address)
                case .connect: try socket.connect(endpoint.address)
                }
            } catch let error as ZMQError {
                throw BusError.socket("cannot \(endpoint.action.rawValue) '\(endpoint.address)': \(error) (is another process using it?)")
            }
        }
    }

    /// The bound address (useful with `tcp://127.0.0.1:*`).
    public var boundEndpoint: String? { socket.lastEndpoint }

    /// Waits until `count` subscribers are connected and their subscriptions have arrived.
    /// A subscriber sends its subscriptions right after connecting; a short settle time after
    /// the last new connection lets those with several topics finish.
    public func waitForSubscribers(_ count: Int, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            try readMonitorEvents()
            if peers >= count && subscriptionsSeen >= peers && Date().timeIntervalSince(lastPeerChange) >= 0.2 { return }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 {
                throw BusError.noSubscribers(endpoint: endpoints.map(\.description).joined(separator: ", "), wanted: count, got: peers, seconds: timeout)
            }
            try readSubscriptions(timeout: min(remaining, 0.05))
        }
    }

    private func readMonitorEvents() throws {
        while let parts = try monitor.receive(timeout: 0), let event = parts.first, event.count >= 2 {
            let kind = Int32(UInt16(event[0]) | UInt16(event[1]) << 8)
            if kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED { peers += 1 }
            if kind == ZMQ_EVENT_DISCONNECTED { peers = max(0, peers - 1) }
            lastPeerChange = Date()
        }
    }

    private func readSubscriptions(timeout: Double) throws {
        while let parts = try socket.receive(timeout: timeout) {
            if let first = parts.first?.first, first == 1 { subscriptionsSeen += 1 }
            if timeout > 0 { break }
        }
    }

    /// Sends one message. Returns false when it was dropped (counted in `dropped`).
    @discardableResult
    public func publish(_ message: BusMessage, whenFull: WhenFull? = nil) throws -> Bool {
        sendsSinceSubscriptionCheck += 1
        if sendsSinceSubscriptionCheck >= 256 {
            // Subscriptions queue up on an XPUB socket; read them now and then.
            sendsSinceSubscriptionCheck = 0
            try readSubscriptions(timeout: 0)
        }
        let parts = message.parts
        if try socket.send(parts: parts, dontWait: true) {
            sent += 1
            return true
        }
        switch whenFull ?? options.whenFull {
        case .drop:
            dropped += 1
            return false
        case .block(let seconds):
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                Thread.sleep(forTimeInterval: 0.001)
                if try socket.send(parts: parts, dontWait: true) {
                    sent += 1
                    return true
                }
            }
            dropped += 1
            return false
        }
    }

    /// Closes the socket and returns once what is queued has been sent, or the linger time ran
    /// out: a pipeline's last messages (end-of-stream) must leave before the process exits.
    public func close() {
        zmq_socket_monitor(socket.handle, nil, 0)
        monitor.close(lingerMilliseconds: 0)
        socket.close(lingerMilliseconds: options.lingerMilliseconds)
        if ownsContext { context.terminate() }
    }
}

/// Receives bus messages: a SUB socket with prefix subscriptions.
public final class BusSubscriber: @unchecked Sendable {
    private let context: ZMQContext
    private let socket: ZMQSocket

    /// - Parameter topics: prefixes to subscribe to; empty means everything.
    public init(endpoint: BusEndpoint, topics: [String] = [], receiveHighWaterMark: Int32 = 0) throws {
        guard endpoint.role == .sub else { throw BusError.badEndpoint(endpoint.description, "a subscriber needs a sub endpoint") }
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: ZMQ_SUB)
        if receiveHighWaterMark > 0 { try socket.set(ZMQ_RCVHWM, receiveHighWaterMark) }
        for topic in topics.isEmpty ? [""] : topics {
            try socket.set(ZMQ_SUBSCRIBE, bytes: Array(topic.utf8))
        }
        do {
            switch endpoint.action {
            case .bind: try socket.bind(endpoint.address)
            case .connect: try socket.connect(endpoint.address)
            }
        } catch let error as ZMQError {
            throw BusError.socket("cannot \(endpoint.action.rawValue) '\(endpoint.address)': \(error)")
        }
    }

    /// The next message, or nil after `timeout` seconds (nil timeout: wait forever).
    public func receive(timeout: Double?) throws -> BusMessage? {
        guard let parts = try socket.receive(timeout: timeout) else { return nil }
        return BusMessage(parts: parts)
    }

    public func close() { socket.close(lingerMilliseconds: 0) }
}
