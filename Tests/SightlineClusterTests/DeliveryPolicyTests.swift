import Foundation
import SightlineCluster
import SightlineCore
import SightlineNATS
import Testing

/// The pure parts of the work queue: retry timeline, reconnect backoff, item keys and the
/// commit that makes outputs idempotent.
@Suite struct DeliveryPolicyTests {
    @Test func failuresRetryWithGrowingDelaysThenDeadLetterOnTheLastDelivery() {
        let policy = DeliveryPolicy(maxDeliveries: 4, retryDelay: 2, maximumRetryDelay: 5)
        let timeline = (1...4).map { policy.action(for: .failed(permanent: false), delivery: $0) }
        #expect(timeline == [.retry(after: 2), .retry(after: 4), .retry(after: 5), .deadLetter])
        #expect(policy.action(for: .failed(permanent: true), delivery: 1) == .deadLetter)
        #expect(policy.action(for: .succeeded, delivery: 4) == .ack)
        #expect(policy.action(for: .alreadyDone, delivery: 9) == .ack)
    }

    @Test func reconnectBackoffDoublesToItsCapWithBoundedJitter() {
        let backoff = ExponentialBackoff(initial: 0.25, maximum: 5, jitter: 0.2)
        let middle = (1...8).map { backoff.delay(afterFailedRounds: $0, unit: 0.5) }
        #expect(middle == [0.25, 0.5, 1, 2, 4, 5, 5, 5])
        for round in 1...40 {
            for unit in [0.0, 0.3, 0.999] {
                let delay = backoff.delay(afterFailedRounds: round, unit: unit)
                let base = min(5, 0.25 * pow(2, Double(min(round - 1, 30))))
                #expect(delay >= base * 0.8 - 1e-12 && delay <= min(5, base * 1.2) + 1e-12)
            }
        }
        #expect(backoff.delay(afterFailedRounds: 0, unit: 0.5) == 0.25)
    }

    @Test func keysNameContentAndPipelineAndAreCheckedOnDecode() throws {
        let item = WorkItem(path: "/v/a.mp4", name: "a.mp4", sha256: String(repeating: "ab", count: 32), pipelineHash: String(repeating: "c", count: 64), submitted: 1)
        #expect(item.key == String(repeating: "ab", count: 16) + "-" + String(repeating: "c", count: 12))
        #expect(try WorkItem.decode(item.encoded()) == item)
        var forged = item
        forged.sha256 = String(repeating: "0", count: 64)
        #expect(throws: ClusterError.self) { try WorkItem.decode(forged.encoded()) }
        #expect(throws: ClusterError.self) { try WorkItem.decode(Data("{not json".utf8)) }
        #expect(throws: (any Error).self) { try NATSSettings.parseURLs("http://x:1") }
        #expect(try NATSSettings.parseURLs("127.0.0.1:4222, tls://b:4443") == ["nats://127.0.0.1:4222", "tls://b:4443"])
    }

    @Test func onlyTheFirstOfTwoAttemptsCommitsAndStagingsAreCleared() throws {
        let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("outputs-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        let outputs = ItemOutputs(directory: root)
        let first = try outputs.stage(key: "k", worker: "w1")
        let second = try outputs.stage(key: "k", worker: "w2")
        let dead = try outputs.stage(key: "k", worker: "w3")
        try Data("one".utf8).write(to: first.appendingPathComponent("r.jsonl"))
        try Data("two".utf8).write(to: second.appendingPathComponent("r.jsonl"))
        #expect(!outputs.isComplete(key: "k"))
        #expect(try outputs.commit(staging: first, key: "k", manifest: Data("{}".utf8)) == .committed)
        #expect(outputs.isComplete(key: "k"))
        #expect(!FileManager.default.fileExists(atPath: dead.path))
        // The slower attempt (its staging recreated, as a running worker would have it).
        let again = try outputs.stage(key: "k", worker: "w2")
        try Data("two".utf8).write(to: again.appendingPathComponent("r.jsonl"))
        #expect(try outputs.commit(staging: again, key: "k", manifest: Data("{}".utf8)) == .alreadyThere)
        #expect(try String(contentsOf: outputs.final(key: "k").appendingPathComponent("r.jsonl"), encoding: .utf8) == "one")
        let left = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(ItemOutputs.stagingFolder).path)
        #expect(left.isEmpty)
    }
}
