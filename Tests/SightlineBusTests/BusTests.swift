import Foundation
import Testing
import SightlineCore
@testable import SightlineBus

@Suite struct EndpointTests {
    @Test func parsesSavantStyleEndpoints() throws {
        #expect(try BusEndpoint(parsing: "pub+bind:tcp://127.0.0.1:5555", defaultRole: .pub)
            == BusEndpoint(role: .pub, action: .bind, address: "tcp://127.0.0.1:5555"))
        #expect(try BusEndpoint(parsing: "sub+connect:ipc:///tmp/x.ipc", defaultRole: .pub)
            == BusEndpoint(role: .sub, action: .connect, address: "ipc:///tmp/x.ipc"))
        #expect(try BusEndpoint(parsing: "tcp://127.0.0.1:1", defaultRole: .sub).action == .connect)
    }

    @Test(arguments: ["pub+listen:tcp://a:1", "foo+bind:tcp://a:1", "pub+bind:http://x", "nonsense"])
    func rejectsBadEndpoints(text: String) {
        #expect(throws: BusError.self) { try BusEndpoint(parsing: text, defaultRole: .pub) }
    }
}

@Suite struct EnvelopeTests {
    @Test func topicsAreUnambiguousPrefixes() {
        let cam1 = Envelope.topic(kind: "stats", source: "cam1")
        let cam10 = Envelope.topic(kind: "stats", source: "cam10")
        #expect(cam1 == "stats/cam1/")
        #expect(!cam10.hasPrefix(cam1))
        #expect(cam1.hasPrefix("stats/"))
    }

    @Test func sequenceNumbersArePerTopic() {
        var encoder = EnvelopeEncoder(pipelineName: "p", pipelineHash: "h")
        let seqs = [("a", "cam1"), ("a", "cam1"), ("b", "cam1"), ("a", "cam2"), ("a", "cam1")].map { kind, source in
            encoder.encode(kind: kind, source: source, start: 0, end: 0, data: [:], wallClock: 1).headerJSON?["seq"]?.intValue
        }
        #expect(seqs == [0, 1, 0, 0, 2])
    }

    @Test func headerCarriesTheSchema() throws {
        var encoder = EnvelopeEncoder(pipelineName: "demo", pipelineHash: "abc")
        let message = encoder.encode(kind: "stats", source: "cam1", start: 1.5, end: 2, data: ["x": 1],
                                     provenance: [Provenance(name: "m", version: "1", sha256: "ff")], wallClock: 7)
        let header = try #require(message.headerJSON)
        #expect(header["schema"] == "sightline.bus/1")
        #expect(header["kind"] == "stats")
        #expect(header["source"] == "cam1")
        #expect(header["pts_start"] == .double(1.5))
        #expect(header["pts_end"] == .double(2))
        #expect(header["pipeline"]?["name"] == "demo")
        #expect(header["pipeline"]?["hash"] == "abc")
        #expect(header["provenance"] == [["name": "m", "version": "1", "sha256": "ff"]])
        #expect(header["data"]?["x"] == .int(1))
    }

    @Test(arguments: Envelope.VectorFormat.allCases)
    func vectorsRoundTrip(format: Envelope.VectorFormat) throws {
        var encoder = EnvelopeEncoder(pipelineName: "p", pipelineHash: "h", vectorFormat: format)
        let vector: [Float] = [0, 1, -2.5, 0.333333, 1e-3, 65504]
        let message = encoder.encode(kind: "e", source: "s", start: 0, end: 0, data: [:], vector: vector, wallClock: 0)
        #expect(message.payload?.count == vector.count * (format == .float32 ? 4 : 2))
        let decoded = try #require(message.vector)
        for (a, b) in zip(decoded, vector) {
            #expect(abs(a - b) <= (format == .float32 ? 0 : abs(b) * 1e-3 + 1e-4))
        }
        #expect(message.headerJSON?["payload"]?["count"] == .int(6))
        // Little-endian on the wire: 1.0f is 00 00 80 3f.
        if format == .float32 { #expect(Array(message.payload?[4..<8] ?? []) == [0, 0, 0x80, 0x3f]) }
    }

    @Test func headerBytesAreCanonicalJSON() throws {
        var encoder = EnvelopeEncoder(pipelineName: "n\"q", pipelineHash: "h")
        let record = encoder.encode(kind: "stats", source: "cam.1", start: 0.1, end: 1e-7, data: ["a": [1, 2.5], "z": "é\n"],
                                    vector: [1, 2], provenance: [Provenance(name: "m", version: "1")], wallClock: 1795926996.25)
        for message in [record, encoder.encode(StatusEvent(.gap(afterSeconds: 1.5, duration: 0.25), sourceID: nil, wallClock: 3))] {
            let parsed = try #require(message.headerJSON)
            #expect(message.header == parsed.jsonBytes, "keys sorted, no spaces, numbers as written")
        }
    }

    @Test func jsonTextIsDeterministic() {
        let value: JSONValue = ["b": [1, 2.5, "x\"y\n"], "a": .null, "c": true, "d": 3.0]
        #expect(value.jsonText == #"{"a":null,"b":[1,2.5,"x\"y\n"],"c":true,"d":3.0}"#)
        #expect(JSONValue.parse(value.jsonText) == value)
    }
}

/// Real ZeroMQ sockets on loopback.
@Suite(.serialized) struct PubSubTests {
    @Test func waitsForSubscribersThenDeliversEverythingInOrder() throws {
        let publisher = try BusPublisher(endpoints: [BusEndpoint(parsing: "pub+bind:tcp://127.0.0.1:*", defaultRole: .pub)])
        let address = try #require(publisher.boundEndpoint)
        let subscriber = try BusSubscriber(endpoint: BusEndpoint(role: .sub, action: .connect, address: address), topics: ["stats/cam1/"])
        try publisher.waitForSubscribers(1, timeout: 5)
        var encoder = EnvelopeEncoder(pipelineName: "p", pipelineHash: "h")
        for i in 0..<200 {
            // cam10 shares the prefix "cam1" but must not reach a cam1 subscriber.
            for source in ["cam1", "cam10"] {
                try publisher.publish(encoder.encode(kind: "stats", source: source, start: Double(i), end: Double(i), data: [:], wallClock: 0))
            }
        }
        var seqs: [Int64] = []
        while let message = try subscriber.receive(timeout: 1) {
            #expect(message.topic == "stats/cam1/")
            seqs.append(message.headerJSON?["seq"]?.intValue ?? -1)
        }
        #expect(seqs == (0..<200).map { Int64($0) })
        publisher.close()
        subscriber.close()
    }

    @Test func noSubscriberIsAClearTimeout() throws {
        let publisher = try BusPublisher(endpoints: [BusEndpoint(parsing: "pub+bind:tcp://127.0.0.1:*", defaultRole: .pub)])
        #expect(throws: BusError.self) { try publisher.waitForSubscribers(1, timeout: 0.3) }
        publisher.close()
    }

    @Test func aFullSubscriberIsCountedNotSilentlyDropped() throws {
        let publisher = try BusPublisher(
            endpoints: [BusEndpoint(parsing: "pub+bind:tcp://127.0.0.1:*", defaultRole: .pub)],
            options: .init(highWaterMark: 10, lingerMilliseconds: 0, whenFull: .drop))
        let address = try #require(publisher.boundEndpoint)
        // The subscriber never reads: its queues fill and the publisher must notice.
        let subscriber = try BusSubscriber(endpoint: BusEndpoint(role: .sub, action: .connect, address: address), receiveHighWaterMark: 10)
        try publisher.waitForSubscribers(1, timeout: 5)
        let big = [Float](repeating: 1, count: 16 * 1024)
        var encoder = EnvelopeEncoder(pipelineName: "p", pipelineHash: "h")
        var delivered = 0
        for _ in 0..<600 where try publisher.publish(encoder.encode(kind: "blob", source: "s", start: 0, end: 0, data: [:], vector: big, wallClock: 0)) {
            delivered += 1
        }
        #expect(publisher.dropped > 0)
        #expect(publisher.dropped + delivered == 600)
        #expect(publisher.sent == delivered)
        publisher.close()
        subscriber.close()
    }

    @Test func addressInUseIsAClearError() throws {
        let first = try BusPublisher(endpoints: [BusEndpoint(parsing: "pub+bind:tcp://127.0.0.1:*", defaultRole: .pub)])
        let address = try #require(first.boundEndpoint)
        do {
            _ = try BusPublisher(endpoints: [BusEndpoint(role: .pub, action: .bind, address: address)])
            Issue.record("second bind succeeded")
        } catch let error as BusError {
            #expect(error.description.contains(address))
        }
        first.close()
    }
}
