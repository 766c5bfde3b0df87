import Foundation
import Testing
import SightlineCore
@testable import SightlineBus
import CZeroMQ

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

    @Test func aFullSubscriberIsCountedNotSilentlyDroppedInBlockMode() throws {
        // Batch (block mode, XPUB_NODROP): a subscriber that stops reading is waited for, then
        // every message it could not take is counted.
        let publisher = try BusPublisher(
            endpoints: [BusEndpoint(parsing: "pub+bind:tcp://127.0.0.1:*", defaultRole: .pub)],
            options: .init(highWaterMark: 10, lingerMilliseconds: 0, whenFull: .block(0.002)))
        let address = try #require(publisher.boundEndpoint)
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

    @Test func aStuckSubscriberLosesOnlyItsOwnMessagesInDropMode() throws {
        // Live (drop mode): one subscriber never reads. With XPUB_NODROP every send failed once
        // its queue filled, so the healthy one got 5,000 of 20,000; now only the stuck one loses.
        let publisher = try BusPublisher(
            endpoints: [BusEndpoint(parsing: "pub+bind:tcp://127.0.0.1:*", defaultRole: .pub)],
            options: .init(highWaterMark: 1000, lingerMilliseconds: 0, whenFull: .drop))
        let address = try #require(publisher.boundEndpoint)
        let stuck = try BusSubscriber(endpoint: BusEndpoint(role: .sub, action: .connect, address: address), receiveHighWaterMark: 10)
        let healthy = try BusSubscriber(endpoint: BusEndpoint(role: .sub, action: .connect, address: address), receiveHighWaterMark: 100_000)
        try publisher.waitForSubscribers(2, timeout: 5)
        let total = 20_000
        let reader = ReceiveCounter(subscriber: healthy, expected: total)
        let payload = [Float](repeating: 1, count: 256)  // 1 KiB: the stuck queues fill quickly
        var encoder = EnvelopeEncoder(pipelineName: "p", pipelineHash: "h")
        let started = Date()
        for index in 0..<total {
            try publisher.publish(encoder.encode(kind: "blob", source: "s", start: Double(index), end: 0, data: [:], vector: payload, wallClock: 0))
            // Pace a little so the healthy reader keeps up (it is not the one under test).
            if index % 200 == 199 { Thread.sleep(forTimeInterval: 0.002) }
        }
        let sendSeconds = Date().timeIntervalSince(started)
        let received = reader.wait(seconds: 10)
        var stuckReceived = 0
        while try stuck.receive(timeout: 0.2) != nil { stuckReceived += 1 }
        #expect(received == total, "the healthy subscriber got \(received) of \(total)")
        #expect(stuckReceived < total, "the stuck subscriber's queue must have overflowed (\(stuckReceived))")
        #expect(publisher.dropped == 0)
        #expect(sendSeconds < 5, "publishing never waits on the stuck subscriber (\(sendSeconds) s)")
        publisher.close()
        stuck.close()
        healthy.close()
    }

    @Test func anOversizedMessageFromAPeerIsRefused() throws {
        // Subscriptions are the only thing peers send a publisher, and libzmq keeps each in a
        // trie a character deep per byte: a 1 MiB subscription is a million-level trie that
        // overflows the stack when torn down (it crashes pyzmq's own XSUB). The publisher must
        // refuse it at the door. The hostile peer speaks ZMTP by hand so it holds no trie itself.
        let publisher = try BusPublisher(
            endpoints: [BusEndpoint(parsing: "pub+bind:tcp://127.0.0.1:*", defaultRole: .pub)],
            options: .init(lingerMilliseconds: 0, maxInboundBytes: 4096))
        let address = try #require(publisher.boundEndpoint)
        let port = try #require(UInt16(address.split(separator: ":").last ?? ""))
        let hostile = try RawZMTPPeer(port: port, socketType: "SUB")
        try hostile.sendMessage([1] + [UInt8](repeating: 65, count: 1 << 20))
        Thread.sleep(forTimeInterval: 0.3)
        let normal = try BusSubscriber(endpoint: BusEndpoint(role: .sub, action: .connect, address: address), topics: ["t/"])
        try publisher.waitForSubscribers(1, timeout: 5)
        #expect(publisher.subscriptionsSeen == 1, "only the normal subscription arrived")
        var encoder = EnvelopeEncoder(pipelineName: "p", pipelineHash: "h")
        try publisher.publish(encoder.encode(kind: "t", source: "s", start: 0, end: 0, data: [:], wallClock: 0))
        #expect(try normal.receive(timeout: 2) != nil)
        #expect(hostile.isClosedByPeer(), "the publisher hung up on the hostile peer")
        hostile.close()
        normal.close()
        publisher.close()
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

/// Counts messages on a background thread until `expected` arrived or the wait ends.
final class ReceiveCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private let done = DispatchSemaphore(value: 0)

    init(subscriber: BusSubscriber, expected: Int) {
        Thread { [self] in
            var seen = 0
            while seen < expected, (try? subscriber.receive(timeout: 3)) != nil {
                seen += 1
                lock.withLock { count = seen }
            }
            done.signal()
        }.start()
    }

    func wait(seconds: Double) -> Int {
        _ = done.wait(timeout: .now() + seconds)
        return lock.withLock { count }
    }
}

@Suite struct SequenceGapTests {
    @Test func gapsAreCountedPerTopicAfterTheFirstMessage() {
        var gaps = SequenceGaps()
        #expect(gaps.note(topic: "a/", seq: 5) == 0)  // a late joiner: nothing lost yet
        #expect(gaps.note(topic: "a/", seq: 6) == 0)
        #expect(gaps.note(topic: "a/", seq: 9) == 2)
        #expect(gaps.note(topic: "b/", seq: 0) == 0)
        #expect(gaps.note(topic: "b/", seq: 2) == 1)
        #expect(gaps.note(topic: "a/", seq: 0) == 0)  // the publisher restarted
        #expect(gaps.note(topic: "a/", seq: 1) == 0)
        #expect(gaps.lostByTopic == ["a/": 2, "b/": 1])
        #expect(gaps.totalLost == 3)
    }
}

@Suite struct LoopbackTests {
    @Test(arguments: [
        ("pub+bind:tcp://127.0.0.1:5555", true), ("pub+bind:tcp://localhost:1", true), ("pub+bind:tcp://[::1]:5", true),
        ("pub+bind:ipc:///tmp/x", true), ("pub+bind:inproc://x", true),
        ("pub+bind:tcp://0.0.0.0:5555", false), ("pub+bind:tcp://*:5555", false), ("pub+connect:tcp://10.0.0.2:1", false),
        ("pub+connect:tcp://127.0.0.1;10.0.0.2:1", false), ("pub+bind:tcp://eth0:5555", false),
    ])
    func loopbackAddressesAreRecognised(text: String, loopback: Bool) throws {
        #expect(try BusEndpoint(parsing: text, defaultRole: .pub).isLoopbackOnly == loopback)
    }
}

/// A bare TCP peer that speaks just enough ZMTP 3.0 (NULL mechanism) to send one message.
final class RawZMTPPeer {
    private let fd: Int32

    init(port: UInt16, socketType: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw BusError.socket("raw connect failed") }
        // Greeting: signature, version 3.0, mechanism NULL, as-server 0, filler.
        var greeting: [UInt8] = [0xFF] + [UInt8](repeating: 0, count: 8) + [0x7F, 3, 0]
        greeting += Array("NULL".utf8) + [UInt8](repeating: 0, count: 16) + [0] + [UInt8](repeating: 0, count: 31)
        try write(greeting)
        var reply = [UInt8](repeating: 0, count: 64)
        _ = recv(fd, &reply, 64, Int32(MSG_WAITALL))
        // READY command with the Socket-Type property.
        let name = Array("Socket-Type".utf8), value = Array(socketType.utf8)
        let body: [UInt8] = [5] + Array("READY".utf8) + [UInt8(name.count)] + name + [0, 0, 0, UInt8(value.count)] + value
        try write([0x04, UInt8(body.count)] + body)
    }

    /// One frame with an 8-byte length.
    func sendMessage(_ bytes: [UInt8]) throws {
        let length = UInt64(bytes.count)
        try write([0x02] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + bytes)
    }

    private func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }  // the peer hung up: what the tests look for
            offset += sent
        }
    }

    /// True once the other side closed the connection (reads give end of file).
    func isClosedByPeer() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    func close() { Glibc.close(fd) }
}
