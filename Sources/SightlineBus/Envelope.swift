import Foundation
import SightlineCore

/// The wire format of every message (schema version 1), shared by the ZeroMQ publisher and
/// the JSONL sink. A message is: topic, JSON header, and an optional binary payload.
///
/// Topics are `KIND/SOURCE/`: the trailing separator makes prefix subscriptions exact
/// (`captions/cam1/` never matches `captions/cam10/`); `KIND/` subscribes to a kind for all
/// sources. Pipeline-wide status uses the source `_pipeline` (source ids cannot start with `_`).
public enum Envelope {
    public static let schema = "sightline.bus/1"
    public static let pipelineSource = "_pipeline"

    public static func topic(kind: String, source: String) -> String { "\(kind)/\(source)/" }

    public enum VectorFormat: String, Sendable, CaseIterable {
        case float32, float16
    }
}

/// Numbers messages per topic and renders records and status events as bus messages.
/// One encoder per sink: sequence numbers are per topic, starting at 0, without gaps unless a
/// message was dropped (then the gap tells the subscriber so).
public struct EnvelopeEncoder: Sendable {
    public var pipelineName: String
    public var pipelineHash: String
    public var vectorFormat: Envelope.VectorFormat
    private var sequence: [String: Int64] = [:]
    private var pipelineBytes: [UInt8] = []
    /// Per source: where its media came from (`{"url", "sha256"?}`), from its `started` status.
    private var origins: [String: JSONValue] = [:]

    public init(pipelineName: String, pipelineHash: String, vectorFormat: Envelope.VectorFormat = .float32) {
        self.pipelineName = pipelineName
        self.pipelineHash = pipelineHash
        self.vectorFormat = vectorFormat
    }

    /// Every later message of `source` carries `origin: {"url", "sha256"}` (sha256 of the file's
    /// bytes; absent for live streams, which have no fixed content).
    public mutating func setOrigin(source: String, url: String, sha256: String?) {
        var origin: [String: JSONValue] = ["url": .string(url)]
        if let sha256 { origin["sha256"] = .string(sha256) }
        origins[source] = .object(origin)
    }

    /// Sinks call this for every status: a source's `started` status names its origin.
    public mutating func noteOrigin(from status: StatusEvent) {
        guard case .started(let opened) = status.detail, let source = status.sourceID else { return }
        setOrigin(source: source, url: opened.url, sha256: opened.sha256)
    }

    /// A typed result as a message: its `data` made by `WireEncoding`, its vector as the payload.
    public mutating func encode(_ record: Record, wallClock: Double) -> BusMessage {
        encode(kind: record.kind.rawValue, source: record.sourceID, start: record.start, end: record.end,
               data: WireEncoding.data(record.value, delta: record.delta), vector: record.value.vector,
               provenance: record.provenance, ingestWallClock: record.ingestWallClock, wallClock: wallClock)
    }

    /// A result message from its parts: what `encode(_ record:)` does once the data is JSON.
    public mutating func encode(kind: String, source: String, start: Double, end: Double, data: [String: JSONValue],
                                vector: [Float]? = nil, provenance: [Provenance] = [], ingestWallClock: Double? = nil,
                                wallClock: Double) -> BusMessage {
        let topic = Envelope.topic(kind: kind, source: source)
        var payload: [UInt8]? = nil
        var payloadInfo: JSONValue? = nil
        if let vector {
            payloadInfo = .object(["dtype": .string(vectorFormat.rawValue), "count": .int(Int64(vector.count)), "byte_order": "little"])
            payload = Self.encodeVector(vector, format: vectorFormat)
        }
        let header = writeHeader(
            topic: topic, kind: kind, source: source, wallClock: wallClock, data: data,
            span: (start, end), provenance: .array(provenance.map(WireEncoding.json)), payload: payloadInfo,
            ingest: ingestWallClock)
        return BusMessage(topic: topic, header: header, payload: payload)
    }

    public mutating func encode(_ status: StatusEvent) -> BusMessage {
        let source = status.sourceID ?? Envelope.pipelineSource
        let topic = Envelope.topic(kind: "status", source: source)
        let header = writeHeader(topic: topic, kind: "status", source: source, wallClock: status.wallClock, data: WireEncoding.data(status),
                                 span: nil, provenance: nil, payload: nil)
        return BusMessage(topic: topic, header: header, payload: nil)
    }

    /// Writes the header with its keys in sorted order directly (the same bytes as
    /// `JSONValue.object(...).jsonBytes`, without building and sorting a dictionary per message:
    /// this runs once per published message).
    private mutating func writeHeader(
        topic: String, kind: String, source: String, wallClock: Double, data: [String: JSONValue],
        span: (Double, Double)?, provenance: JSONValue?, payload: JSONValue?, ingest: Double? = nil
    ) -> [UInt8] {
        let seq = sequence[topic, default: 0]
        sequence[topic] = seq + 1
        if pipelineBytes.isEmpty {
            pipelineBytes = JSONValue.object(["name": .string(pipelineName), "hash": .string(pipelineHash)]).jsonBytes
        }
        var out: [UInt8] = []
        out.reserveCapacity(384)
        func key(_ name: StaticString, first: Bool = false) {
            if !first { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(UInt8(ascii: "\""))
            out.append(UInt8(ascii: ":"))
        }
        out.append(UInt8(ascii: "{"))
        key("data", first: true); JSONValue.object(data).write(to: &out)
        if let ingest { key("ingest_wallclock"); JSONValue.double(ingest).write(to: &out) }
        key("kind"); JSONValue.string(kind).write(to: &out)
        if let origin = origins[source] { key("origin"); origin.write(to: &out) }
        if let payload { key("payload"); payload.write(to: &out) }
        key("pipeline"); out.append(contentsOf: pipelineBytes)
        if let provenance { key("provenance"); provenance.write(to: &out) }
        if let (start, end) = span {
            key("pts_end"); JSONValue.double(end).write(to: &out)
            key("pts_start"); JSONValue.double(start).write(to: &out)
        }
        key("schema"); JSONValue.string(Envelope.schema).write(to: &out)
        key("seq"); JSONValue.int(seq).write(to: &out)
        key("source"); JSONValue.string(source).write(to: &out)
        key("wallclock"); JSONValue.double(wallClock).write(to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    static func encodeVector(_ vector: [Float], format: Envelope.VectorFormat) -> [UInt8] {
        var bytes: [UInt8] = []
        switch format {
        case .float32:
            bytes.reserveCapacity(vector.count * 4)
            for v in vector { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        case .float16:
            bytes.reserveCapacity(vector.count * 2)
            for v in vector { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        }
        return bytes
    }
}

/// One message as it travels: topic, raw JSON header bytes, optional payload.
public struct BusMessage: Sendable, Equatable {
    public var topic: String
    public var header: [UInt8]
    public var payload: [UInt8]?

    public init(topic: String, header: [UInt8], payload: [UInt8]?) {
        self.topic = topic
        self.header = header
        self.payload = payload
    }

    public var parts: [[UInt8]] {
        var parts = [Array(topic.utf8), header]
        if let payload { parts.append(payload) }
        return parts
    }

    public init?(parts: [[UInt8]]) {
        guard parts.count >= 2 else { return nil }
        topic = String(decoding: parts[0], as: UTF8.self)
        header = parts[1]
        payload = parts.count > 2 ? parts[2] : nil
    }

    public var headerJSON: JSONValue? { JSONValue.parse(String(decoding: header, as: UTF8.self)) }

    /// The payload as floats, per the header's `payload.dtype`.
    public var vector: [Float]? {
        guard let payload, let dtype = headerJSON?["payload"]?["dtype"]?.stringValue else { return nil }
        switch dtype {
        case "float32":
            guard payload.count % 4 == 0 else { return nil }
            return stride(from: 0, to: payload.count, by: 4).map { i in
                Float(bitPattern: UInt32(payload[i]) | UInt32(payload[i + 1]) << 8 | UInt32(payload[i + 2]) << 16 | UInt32(payload[i + 3]) << 24)
            }
        case "float16":
            guard payload.count % 2 == 0 else { return nil }
            return stride(from: 0, to: payload.count, by: 2).map { i in
                Float(Float16(bitPattern: UInt16(payload[i]) | UInt16(payload[i + 1]) << 8))
            }
        default:
            return nil
        }
    }

    /// The line `sightline subscribe` (and Samples/subscriber.py) prints:
    /// `{"topic":"…","header":{…as received…}}`, plus `"vector":[…]` (each float `%.9g`, which
    /// round-trips float32) when asked for and present.
    public func jsonLine(includeVector: Bool) -> String {
        var line = "{\"topic\":" + JSONValue.string(topic).jsonText
        line += ",\"header\":" + String(decoding: header, as: UTF8.self)
        if includeVector, let vector {
            line += ",\"vector\":[" + vector.map { String(format: "%.9g", Double($0)) }.joined(separator: ",") + "]"
        }
        return line + "}"
    }
}
