import CZeroMQ
import Foundation

/// Publishes bus messages on one XPUB socket bound/connected to every endpoint.
///
/// XPUB rather than PUB, for two reasons: it sees subscriptions arrive, so a batch job can wait
/// for its subscribers before sending (the slow-joiner problem), and in `.block` mode it runs
/// with XPUB_NODROP, so a full subscriber queue is reported to us and waited out instead of
/// ZeroMQ dropping silently (batch: lose nothing).
///
/// `.drop` mode (live) runs without XPUB_NODROP. With it, one subscriber that never reads
/// makes every send fail, so everyone loses the messages (measured: a healthy subscriber got
/// 5,000 of 20,000). Without it, ZeroMQ drops only at the full subscriber's own queue; that
/// subscriber sees the loss as gaps in the per-topic `seq` numbers (`sightline subscribe`
/// reports them), since the publisher cannot see which queue overflowed.
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
        /// CURVE encryption and the clients allowed in; nil sends in the clear.
        public var curve: CurveServerSettings?
        /// The largest message a peer may send us (subscriptions are topic prefixes; anything
        /// bigger is a hostile or broken peer, and libzmq drops its connection).
        public var maxInboundBytes: Int64
        public init(highWaterMark: Int32 = 1000, lingerMilliseconds: Int32 = 5000, whenFull: WhenFull = .block(5),
                    curve: CurveServerSettings? = nil, maxInboundBytes: Int64 = 65_536) {
            self.highWaterMark = highWaterMark
            self.lingerMilliseconds = lingerMilliseconds
            self.whenFull = whenFull
            self.curve = curve
            self.maxInboundBytes = maxInboundBytes
        }
    }

    public let endpoints: [BusEndpoint]
    public let options: Options
    private let context: ZMQContext
    /// A context the publisher made itself is terminated by `close`.
    private let ownsContext: Bool
    private let socket: ZMQSocket
    public private(set) var subscriptionsSeen = 0
    /// Connected peers, from the socket monitor: handshakes that succeeded minus disconnects
    /// of such connections. A refused client (wrong CURVE key, no CURVE) disconnects after a
    /// failed handshake and never counted, so each failure cancels one disconnect. (The events
    /// carry no connection id to pair them exactly: libzmq reports 0 for a handshake.)
    public var peers: Int { max(0, handshakes - (disconnects - failedHandshakes)) }
    private var handshakes = 0
    private var failedHandshakes = 0
    private var disconnects = 0
    private var lastPeerChange = Date.distantPast
    private let monitor: ZMQSocket
    private let authenticator: ZAPHandler?
    public private(set) var sent = 0
    public private(set) var dropped = 0
    private var sendsSinceSubscriptionCheck = 0

    public init(endpoints: [BusEndpoint], options: Options = Options(), context: ZMQContext? = nil) throws {
        self.endpoints = endpoints
        self.options = options
        self.context = try context ?? ZMQContext()
        ownsContext = context == nil
        if let curve = options.curve {
            authenticator = try ZAPHandler(context: self.context, allowedClientKeys: curve.allowedClientKeys)
        } else {
            authenticator = nil
        }
        socket = try ZMQSocket(context: self.context, type: ZMQ_XPUB)
        try socket.set(ZMQ_SNDHWM, options.highWaterMark)
        if case .block = options.whenFull { try socket.set(ZMQ_XPUB_NODROP, 1) }
        try socket.set(ZMQ_MAXMSGSIZE, int64: options.maxInboundBytes)
        if let curve = options.curve, let secret = curve.serverKeys.secretKey {
            try socket.set(ZMQ_CURVE_SERVER, 1)
            try socket.set(ZMQ_CURVE_SECRETKEY, bytes: Array(secret.utf8))
            try socket.set(ZMQ_ZAP_DOMAIN, bytes: Array("sightline".utf8))
        }
        try socket.set(ZMQ_XPUB_VERBOSE, 1)  // every subscriber's subscription, not just the first
        try socket.set(ZMQ_LINGER, options.lingerMilliseconds)
        // A socket monitor tells connections apart: XPUB shows subscriptions, not who sent them.
        let monitorAddress = "inproc://sightline-monitor-\(UUID().uuidString)"
        guard zmq_socket_monitor(socket.handle, monitorAddress, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED
                                 | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == 0 else {
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
            switch Int32(UInt16(event[0]) | UInt16(event[1]) << 8) {
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: handshakes += 1
            case ZMQ_EVENT_DISCONNECTED: disconnects += 1
            default: failedHandshakes += 1
            }
            lastPeerChange = Date()
        }
    }

    private func readSubscriptions(timeout: Double) throws {
        while let parts = try socket.receive(timeout: timeout) {
            if let first = parts.first?.first, first == 1 { subscriptionsSeen += 1 }
            if timeout > 0 { break }
        }
    }

    /// CURVE handshakes the authenticator accepted and refused (0 without CURVE).
    public var clientsAccepted: Int { authenticator?.accepted ?? 0 }
    public var clientsRefused: Int { authenticator?.refused ?? 0 }

    /// Sends one message. Returns false when it was dropped (counted in `dropped`). In `.drop`
    /// mode a message is only refused when every subscriber is full or none is connected;
    /// a single full subscriber loses it at its own queue.
    @discardableResult
    public func publish(_ message: BusMessage, whenFull: WhenFull? = nil) throws -> Bool {
        sendsSinceSubscriptionCheck += 1
        if sendsSinceSubscriptionCheck >= 256 {
            // Subscriptions queue up on an XPUB socket; read them now and then.
            sendsSinceSubscriptionCheck = 0
            try readSubscriptions(timeout: 0)
        }
        let parts = message.parts
        let mode = whenFull ?? options.whenFull
        if case .drop = options.whenFull, case .block(let seconds) = mode {
            return try publishWaitingOnLossySocket(parts, seconds: seconds)
        }
        if try socket.send(parts: parts, dontWait: true) {
            sent += 1
            return true
        }
        switch mode {
        case .drop:
            dropped += 1
            return false
        case .block(let seconds):
            if try sendRetrying(parts, seconds: seconds) { return true }
            dropped += 1
            return false
        }
    }

    /// Retries a send that found a full subscriber until `seconds` pass.
    private func sendRetrying(_ parts: [[UInt8]], seconds: Double) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.001)
            if try socket.send(parts: parts, dontWait: true) {
                sent += 1
                return true
            }
        }
        return false
    }

    /// A message that matters more than the rest (end-of-stream) on a live, lossy socket: for
    /// up to `seconds` it waits until every subscriber has room (XPUB_NODROP, switched on for
    /// this message only), then goes to those that have room; a stuck subscriber loses it as it
    /// loses everything else, and the others are never held back longer than that.
    private func publishWaitingOnLossySocket(_ parts: [[UInt8]], seconds: Double) throws -> Bool {
        try socket.set(ZMQ_XPUB_NODROP, 1)
        var delivered = try socket.send(parts: parts, dontWait: true)
        if delivered { sent += 1 } else { delivered = try sendRetrying(parts, seconds: seconds) }
        try socket.set(ZMQ_XPUB_NODROP, 0)
        if !delivered {
            _ = try socket.send(parts: parts, dontWait: true)
            sent += 1
        }
        return true
    }

    /// Closes the socket and returns once what is queued has been sent, or the linger time ran
    /// out: a pipeline's last messages (end-of-stream) must leave before the process exits.
    public func close() {
        zmq_socket_monitor(socket.handle, nil, 0)
        monitor.close(lingerMilliseconds: 0)
        socket.close(lingerMilliseconds: options.lingerMilliseconds)
        authenticator?.stop()
        if ownsContext { context.terminate() }
    }
}

/// Receives bus messages: a SUB socket with prefix subscriptions.
public final class BusSubscriber: @unchecked Sendable {
    private let context: ZMQContext
    private let socket: ZMQSocket

    /// - Parameters:
    ///   - topics: prefixes to subscribe to; empty means everything.
    ///   - curve: our key pair and the publisher's public key, for a CURVE-protected pipeline.
    ///   - maxMessageBytes: a larger message drops the connection instead of being allocated.
    public init(endpoint: BusEndpoint, topics: [String] = [], receiveHighWaterMark: Int32 = 0,
                curve: CurveClientSettings? = nil, maxMessageBytes: Int64 = 256 << 20) throws {
        guard endpoint.role == .sub else { throw BusError.badEndpoint(endpoint.description, "a subscriber needs a sub endpoint") }
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: ZMQ_SUB)
        if receiveHighWaterMark > 0 { try socket.set(ZMQ_RCVHWM, receiveHighWaterMark) }
        try socket.set(ZMQ_MAXMSGSIZE, int64: maxMessageBytes)
        if let curve, let secret = curve.clientKeys.secretKey {
            try socket.set(ZMQ_CURVE_SERVERKEY, bytes: Array(curve.serverPublicKey.utf8))
            try socket.set(ZMQ_CURVE_PUBLICKEY, bytes: Array(curve.clientKeys.publicKey.utf8))
            try socket.set(ZMQ_CURVE_SECRETKEY, bytes: Array(secret.utf8))
        }
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
