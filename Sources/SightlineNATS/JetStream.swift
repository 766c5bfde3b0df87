import CNats
import Foundation

/// JetStream on one connection: streams, durable pull consumers, publishing with ids, and
/// key-value buckets. Each call is a request to the server and may throw `NATSError`.
public struct JetStream: Sendable {
    let connection: NATSConnection
    var context: OpaquePointer { connection.jetStreamHandle }

    /// Creates the stream, or updates it when it exists with other settings.
    public func addStream(name: String, subject: String, workQueue: Bool, maxAge: Double = 0, replicas: Int = 1,
                          duplicateWindow: Double = 0) throws {
        var code = jsErrCode(0)
        let status = sightline_js_add_stream(context, name, subject, workQueue, Int64(maxAge * 1e9), Int32(replicas),
                                             Int64(duplicateWindow * 1e9), &code)
        try check("stream \(name)", status, jetStream: code)
    }

    /// Creates a durable pull consumer; an existing one with the same settings is kept.
    public func addPullConsumer(stream: String, durable: String, filter: String, ackWait: Double, maxDeliver: Int) throws {
        var code = jsErrCode(0)
        let status = sightline_js_add_pull_consumer(context, stream, durable, filter, Int64(ackWait * 1e9), Int64(maxDeliver), &code)
        try check("consumer \(durable) on \(stream)", status, jetStream: code)
    }

    public struct PublishAck: Sendable {
        public let sequence: UInt64
        /// The stream already held a message with this id (inside its duplicate window).
        public let duplicate: Bool
    }

    /// Publishes into a stream and waits for its acknowledgement.
    @discardableResult
    public func publish(subject: String, data: Data, messageID: String? = nil) throws -> PublishAck {
        var code = jsErrCode(0)
        var duplicate = false
        var sequence: UInt64 = 0
        let status = data.withUnsafeBytes { bytes in
            sightline_js_publish(context, subject, bytes.baseAddress, Int32(bytes.count), messageID, &duplicate, &sequence, &code)
        }
        try check("publish \(subject)", status, jetStream: code)
        return PublishAck(sequence: sequence, duplicate: duplicate)
    }

    public struct StreamState: Sendable {
        public let messages: UInt64
        public let bytes: UInt64
        public let firstSequence: UInt64
        public let lastSequence: UInt64
    }

    public func streamState(_ stream: String) throws -> StreamState {
        var code = jsErrCode(0)
        var messages: UInt64 = 0
        var bytes: UInt64 = 0, first: UInt64 = 0, last: UInt64 = 0
        try check("stream \(stream)", sightline_js_stream_state(context, stream, &messages, &bytes, &first, &last, &code), jetStream: code)
        return StreamState(messages: messages, bytes: bytes, firstSequence: first, lastSequence: last)
    }

    public struct ConsumerState: Sendable {
        /// Not yet delivered.
        public let pending: UInt64
        /// Delivered, not yet acknowledged (in flight).
        public let ackPending: Int64
        public let redelivered: Int64
        /// Pull requests waiting: idle workers.
        public let waiting: Int64
    }

    public func consumerState(stream: String, durable: String) throws -> ConsumerState {
        var code = jsErrCode(0)
        var pending: UInt64 = 0
        var ackPending: Int64 = 0, redelivered: Int64 = 0, waiting: Int64 = 0
        try check("consumer \(durable)", sightline_js_consumer_state(context, stream, durable, &pending, &ackPending, &redelivered, &waiting, &code),
                  jetStream: code)
        return ConsumerState(pending: pending, ackPending: ackPending, redelivered: redelivered, waiting: waiting)
    }

    /// The message stored at `sequence` (a dead letter, for `cluster status`).
    public func message(stream: String, sequence: UInt64) throws -> Data {
        var code = jsErrCode(0)
        var message: OpaquePointer?
        try check("message \(sequence) of \(stream)", js_GetMsg(&message, context, stream, sequence, nil, &code), jetStream: code)
        defer { natsMsg_Destroy(message) }
        return JetStreamMessage.data(of: message)
    }

    public func pullSubscription(stream: String, durable: String, subject: String) throws -> PullSubscription {
        var code = jsErrCode(0)
        var subscription: OpaquePointer?
        try check("subscribe \(durable)", sightline_js_pull_bind(&subscription, context, stream, durable, subject, &code), jetStream: code)
        guard let subscription else { throw NATSError("subscribe \(durable)", NATS_ERR) }
        return PullSubscription(handle: subscription, connection: connection)
    }

    /// Binds a key-value bucket, creating it when absent.
    public func keyValue(bucket: String, ttl: Double = 0, history: Int = 1, replicas: Int = 1) throws -> KeyValueBucket {
        var store: OpaquePointer?
        try check("key-value bucket \(bucket)", sightline_kv_bucket(&store, context, bucket, Int64(ttl * 1e9), Int32(history), Int32(replicas)))
        guard let store else { throw NATSError("key-value bucket \(bucket)", NATS_ERR) }
        return KeyValueBucket(handle: store, connection: connection, name: bucket)
    }
}

/// A pull subscription on a durable consumer. Fetch from one thread at a time.
public final class PullSubscription: @unchecked Sendable {
    let handle: OpaquePointer
    let connection: NATSConnection

    init(handle: OpaquePointer, connection: NATSConnection) {
        self.handle = handle
        self.connection = connection
    }

    /// Up to `count` messages; none (not an error) when nothing arrived within `timeout`.
    public func fetch(count: Int, timeout: Double) throws -> [JetStreamMessage] {
        var list = natsMsgList()
        var code = jsErrCode(0)
        let status = natsSubscription_Fetch(&list, handle, Int32(count), Int64(timeout * 1000), &code)
        defer { natsMsgList_Destroy(&list) }
        if status == NATS_TIMEOUT { return [] }
        try check("fetch", status, jetStream: code)
        return (0..<Int(list.Count)).compactMap { index in
            sightline_msg_list_take(&list, Int32(index)).map { JetStreamMessage(handle: $0, connection: connection) }
        }
    }

    deinit { natsSubscription_Destroy(handle) }
}

/// One delivered JetStream message and its acknowledgements. Thread-safe: a progress timer
/// may send in-progress while the owner works.
public final class JetStreamMessage: @unchecked Sendable {
    let handle: OpaquePointer
    let connection: NATSConnection
    public let subject: String
    public let data: Data
    /// 1 on the first delivery, then one more per redelivery.
    public let deliveryCount: Int

    init(handle: OpaquePointer, connection: NATSConnection) {
        self.handle = handle
        self.connection = connection
        subject = natsMsg_GetSubject(handle).map { String(cString: $0) } ?? ""
        data = Self.data(of: handle)
        var count: UInt64 = 0
        deliveryCount = sightline_msg_delivery_count(handle, &count) == NATS_OK ? Int(clamping: count) : 1
    }

    static func data(of message: OpaquePointer?) -> Data {
        guard let message, let bytes = natsMsg_GetData(message) else { return Data() }
        let length = Int(natsMsg_GetDataLength(message))
        return length > 0 ? Data(bytes: bytes, count: length) : Data()
    }

    /// A header field's value (nil when absent).
    public func header(_ key: String) -> String? {
        var value: UnsafePointer<CChar>?
        guard natsMsgHeader_Get(handle, key, &value) == NATS_OK, let value else { return nil }
        return String(cString: value)
    }

    /// Done: the server removes it from a work queue. Waits for the server's confirmation.
    public func ack() throws { try check("ack", natsMsg_AckSync(handle, nil, nil)) }
    /// Still working: restarts the server's ack-wait timer.
    public func inProgress() throws { try check("in-progress", natsMsg_InProgress(handle, nil)) }
    /// Failed this time: redeliver after `delay` seconds.
    public func nak(delay: Double) throws { try check("nak", natsMsg_NakWithDelay(handle, Int64(delay * 1000), nil)) }
    /// Never redeliver.
    public func terminate() throws { try check("term", natsMsg_Term(handle, nil)) }

    deinit { natsMsg_Destroy(handle) }
}

/// A JetStream key-value bucket.
public final class KeyValueBucket: @unchecked Sendable {
    let handle: OpaquePointer
    let connection: NATSConnection
    public let name: String

    init(handle: OpaquePointer, connection: NATSConnection, name: String) {
        self.handle = handle
        self.connection = connection
        self.name = name
    }

    /// Writes the key; returns its new revision.
    @discardableResult
    public func put(_ key: String, _ value: Data) throws -> UInt64 {
        var revision: UInt64 = 0
        let status = value.withUnsafeBytes { kvStore_Put(&revision, handle, key, $0.baseAddress, Int32($0.count)) }
        try check("put \(name)/\(key)", status)
        return revision
    }

    /// Writes the key only if it is absent (or deleted); returns the new revision, or nil when
    /// the key already holds a value.
    public func create(_ key: String, _ value: Data) throws -> UInt64? {
        var revision: UInt64 = 0
        let status = value.withUnsafeBytes { kvStore_Create(&revision, handle, key, $0.baseAddress, Int32($0.count)) }
        if status == NATS_OK { return revision }
        let error = NATSError("create \(name)/\(key)", status)
        if error.jetStreamCode == Int(JSStreamWrongLastSequenceErr.rawValue) || error.detail.contains("wrong last sequence") { return nil }
        throw error
    }

    /// Writes the key only if its revision is still `revision` (compare-and-set); returns the
    /// new revision, or nil when someone wrote it since.
    public func update(_ key: String, _ value: Data, revision: UInt64) throws -> UInt64? {
        var newRevision: UInt64 = 0
        let status = value.withUnsafeBytes { kvStore_Update(&newRevision, handle, key, $0.baseAddress, Int32($0.count), revision) }
        if status == NATS_OK { return newRevision }
        let error = NATSError("update \(name)/\(key)", status)
        if error.detail.contains("wrong last sequence") { return nil }
        throw error
    }

    public struct Entry: Sendable {
        public let value: Data
        public let revision: UInt64
    }

    /// The key's value, or nil when absent or deleted.
    public func get(_ key: String) throws -> Entry? {
        var entry: OpaquePointer?
        let status = kvStore_Get(&entry, handle, key)
        defer { kvEntry_Destroy(entry) }
        if status == NATS_NOT_FOUND { return nil }
        try check("get \(name)/\(key)", status)
        guard let entry else { return nil }
        let length = Int(kvEntry_ValueLen(entry))
        let value = length > 0 ? kvEntry_Value(entry).map { Data(bytes: $0, count: length) } ?? Data() : Data()
        return Entry(value: value, revision: kvEntry_Revision(entry))
    }

    public func delete(_ key: String) throws { try check("delete \(name)/\(key)", kvStore_Delete(handle, key)) }

    /// Every live key (deleted and expired ones are left out).
    public func keys() throws -> [String] {
        var list = kvKeysList()
        let status = kvStore_Keys(&list, handle, nil)
        defer { kvKeysList_Destroy(&list) }
        if status == NATS_NOT_FOUND { return [] }
        try check("keys of \(name)", status)
        return (0..<Int(list.Count)).compactMap { list.Keys[$0].map { String(cString: $0) } }
    }

    deinit { kvStore_Destroy(handle) }
}
