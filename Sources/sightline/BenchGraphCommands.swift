import ArgumentParser
import Dispatch
import Foundation
import SightlineBus
import SightlineCore
import SightlineGraph
import SightlineNodes

struct BenchBusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bus",
        abstract: "Publish throughput of small messages over ZeroMQ on loopback, received by a real subscriber (target ≥ 200k messages/s).")

    @Option(help: "Messages per run.")
    var messages: Int = 300_000

    @Option(name: .customLong("repeat"), help: "Runs; the best is kept.")
    var repeats: Int = 3

    func run() throws {
        print("sightline bench bus — \(messages) messages over tcp://127.0.0.1, best of \(repeats)")
        var encoder = EnvelopeEncoder(pipelineName: "bench", pipelineHash: String(repeating: "0", count: 64))
        let record = Record(.stats(FrameStatistics(frameIndex: 42, width: 320, height: 180, meanLuma: 117.5, motion: 0.0125)),
                            sourceID: "cam1", start: 1.25, end: 1.25)
        let prebuilt = encoder.encode(record, wallClock: 1_800_000_000)
        print("message size: topic \(prebuilt.topic.utf8.count) B + header \(prebuilt.header.count) B")
        var bestRaw = 0.0, bestFull = 0.0
        for _ in 0..<repeats {
            bestRaw = max(bestRaw, try measure { _ in prebuilt })
            bestFull = max(bestFull, try measure { i in
                var r = record
                r.start = Double(i) / 30
                r.end = r.start
                return encoder.encode(r, wallClock: Date().timeIntervalSince1970)
            })
        }
        print(String(format: "publish prebuilt messages:        %9.0f msg/s  (%.2f× the 200k target)", bestRaw, bestRaw / 200_000))
        print(String(format: "encode header + publish:          %9.0f msg/s  (%.2f× the 200k target)", bestFull, bestFull / 200_000))
    }

    /// Messages per second from first send to last receipt, every message received.
    private func measure(_ make: (Int) -> BusMessage) throws -> Double {
        let publisher = try BusPublisher(endpoints: [BusEndpoint(parsing: "pub+bind:tcp://127.0.0.1:*", defaultRole: .pub)],
                                         options: .init(highWaterMark: 100_000, lingerMilliseconds: 1000, whenFull: .block(10)))
        guard let address = publisher.boundEndpoint else { throw BusError.socket("no bound endpoint") }
        let subscriber = try BusSubscriber(endpoint: BusEndpoint(role: .sub, action: .connect, address: address))
        try publisher.waitForSubscribers(1, timeout: 5)
        let total = messages
        let done = DispatchSemaphore(value: 0)
        let received = ReceivedCounter()
        Thread.detachNewThread {
            var count = 0
            while count < total, (try? subscriber.receive(timeout: 5)) ?? nil != nil { count += 1 }
            received.set(count, at: monotonicSeconds())
            done.signal()
        }
        let start = monotonicSeconds()
        for i in 0..<total { try publisher.publish(make(i)) }
        done.wait()
        publisher.close()
        subscriber.close()
        let (count, end) = received.get()
        guard count == total else { throw BusError.socket("subscriber got \(count) of \(total) messages") }
        return Double(total) / (end - start)
    }
}

final class ReceivedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var time = 0.0
    func set(_ c: Int, at t: Double) { lock.lock(); count = c; time = t; lock.unlock() }
    func get() -> (Int, Double) { lock.lock(); defer { lock.unlock() }; return (count, time) }
}

struct BenchSchedulerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "Scheduler overhead per frame per node: a chain of pass-through nodes on Dispatch (target ≤ 20 µs).")

    @Option(help: "Frames per run.")
    var frames: Int = 50_000

    @Option(help: "Pass-through nodes in the long chain.")
    var nodes: Int = 8

    @Option(help: "Edge capacity.")
    var capacity: Int = 16

    @Option(name: .customLong("repeat"), help: "Runs; the best is kept.")
    var repeats: Int = 3

    func run() throws {
        print("sightline bench scheduler — \(frames) frames, synthetic source -> N × passthrough -> null, best of \(repeats)")
        var best: [Int: Double] = [:]
        for _ in 0..<repeats {
            for chain in [0, 1, nodes] {
                best[chain] = min(best[chain] ?? .infinity, try measure(chain: chain))
            }
        }
        let base = best[0] ?? 0
        for chain in [0, 1, nodes] {
            let seconds = best[chain] ?? 0
            var line = String(format: "%2d pass-through nodes: %.3f s, %.1f µs per frame", chain, seconds, seconds / Double(frames) * 1e6)
            if chain > 0 {
                let perNode = (seconds - base) / Double(frames * chain) * 1e6
                line += String(format: ", %.2f µs per frame per node (%.2f× the 20 µs budget)", perNode, perNode / 20)
            }
            print(line)
        }
    }

    private func measure(chain: Int) throws -> Double {
        var yaml = "nodes:\n  cam: {type: synthetic, count: \(frames), size: 4x4}\n  out: {type: null}\n"
        for i in 0..<chain { yaml += "  p\(i): {type: passthrough}\n" }
        yaml += "defaults: {capacity: \(capacity)}\nedges:\n"
        let names = ["cam"] + (0..<chain).map { "p\($0)" } + ["out"]
        for (a, b) in zip(names, names.dropFirst()) { yaml += "  - \(a) -> \(b)\n" }
        let (spec, errors) = PipelineParser.parse(text: yaml, file: "bench")
        guard let spec, errors.isEmpty else { throw Diagnostics(items: errors) }
        let pipeline = try PipelineValidator.validate(spec, registry: BuiltinNodes.registry).get()
        let runtime = try GraphRuntime(pipeline: pipeline, registry: BuiltinNodes.registry)
        let start = monotonicSeconds()
        runtime.start()
        _ = runtime.wait()
        return monotonicSeconds() - start
    }
}
