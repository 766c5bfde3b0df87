import Testing
import SightlineCore
@testable import SightlineGraph

/// Scheduler behaviour on the deterministic harness: one thread, a manual clock.
@Suite(.serialized) struct HarnessTests {
    /// A node that records what it saw and passes frames on as records.
    final class Recorder: NodeProcessor {
        static let descriptor = NodeDescriptor(name: "recorder", description: "test", role: .transform, inputs: .any, outputs: .any, options: [], allowsConcurrency: true)
        static let factory = NodeFactory(descriptor: descriptor) { _, _ in .processor(Recorder()) }
        func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
            if case .frame(let f) = item {
                if f.decodeIndex == 999 { throw TestFailure(message: "bad frame") }
                let seen = FrameStatistics(frameIndex: f.decodeIndex, width: f.width, height: f.height, meanLuma: 0, motion: nil)
                emit(.record(Record(.stats(seen), frame: f)))
            }
        }
    }

    struct TestFailure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    let registry = NodeRegistry([SyntheticSource.factory, CaptureSink.factory, Recorder.factory])

    private func harness(_ yaml: String, file: String = #function) throws -> GraphHarness {
        let (spec, errors) = PipelineParser.parse(text: yaml, file: file)
        #expect(errors.isEmpty)
        let pipeline = try PipelineValidator.validate(#require(spec), registry: registry).get()
        return try GraphHarness(pipeline: pipeline, registry: registry)
    }

    private func frame(_ source: String, _ index: Int) -> Item {
        .frame(Frame(sourceID: source, decodeIndex: index, timestamp: Timestamp(pts: Int64(index), timeBase: Rational(1, 10)),
                     seconds: Double(index) / 10, ingestWallClock: 0, isKeyframe: false, width: 1, height: 1,
                     pixelFormat: .gray8, pixels: [0]))
    }

    private func indices(_ items: [Item], source: String? = nil) -> [Int] {
        items.compactMap {
            if case .record(let r) = $0, source == nil || r.sourceID == source { return r.value.frameIndex ?? -1 }
            return nil
        }
    }

    @Test func blockPolicyLosesNothingAndBoundsTheQueue() throws {
        let h = try harness("""
        nodes:
          cam: {type: synthetic}
          rec: {type: recorder}
          sink: {type: capture}
        edges:
          - {from: cam, to: rec, policy: block, capacity: 3}
          - rec -> sink
        """, file: "block")
        for i in 0..<10 {
            #expect(h.emit(frame("cam", i), fromSource: "cam") == .ok)
            // A full block edge makes the consumer run first, so the queue never exceeds 3.
            #expect(h.queued(from: "cam", to: "rec") <= 3)
        }
        h.endStream("cam")
        h.runUntilIdle()
        #expect(indices(CaptureSink.items(for: "sink")) == Array(0..<10))
        #expect(h.drops(from: "cam", to: "rec") == 0)
        #expect(h.isFinished)
    }

    @Test func dropOldestKeepsTheNewestAndCounts() throws {
        let h = try harness("""
        nodes:
          cam: {type: synthetic}
          rec: {type: recorder}
          sink: {type: capture}
        edges:
          - {from: cam, to: rec, policy: drop-oldest, capacity: 2}
          - rec -> sink
        """, file: "dropOldest")
        for i in 0..<5 { h.emit(frame("cam", i), fromSource: "cam") }
        h.runUntilIdle()
        #expect(indices(CaptureSink.items(for: "sink")) == [3, 4])
        #expect(h.drops(from: "cam", to: "rec") == 3)
        #expect(h.runtime.metrics.snapshot().drops["cam"] == 3)
        h.endStream("cam")
        h.runUntilIdle()
        // The end-of-stream status carries the drop count.
        guard case .endOfStream(let eos)? = CaptureSink.items(for: "sink").last else {
            Issue.record("end-of-stream must be last")
            return
        }
        #expect(eos.sourceID == "cam")
    }

    @Test func dropNewestKeepsWhatIsQueued() throws {
        let h = try harness("""
        nodes:
          cam: {type: synthetic}
          rec: {type: recorder}
          sink: {type: capture}
        edges:
          - {from: cam, to: rec, policy: drop-newest, capacity: 2}
          - rec -> sink
        """, file: "dropNewest")
        let results = (0..<5).map { h.emit(frame("cam", $0), fromSource: "cam") }
        #expect(results == [.ok, .ok, .dropped, .dropped, .dropped])
        h.runUntilIdle()
        #expect(indices(CaptureSink.items(for: "sink")) == [0, 1])
    }

    @Test func endOfStreamWaitsForEveryBranchOfAFanIn() throws {
        let h = try harness("""
        nodes:
          cam: {type: synthetic}
          a: {type: recorder}
          b: {type: recorder}
          sink: {type: capture}
        edges:
          - cam -> a, b
          - a -> sink
          - b -> sink
        """, file: "fanIn")
        for i in 0..<3 { h.emit(frame("cam", i), fromSource: "cam") }
        h.endStream("cam")
        h.runUntilIdle()
        let items = CaptureSink.items(for: "sink")
        #expect(indices(items).sorted() == [0, 0, 1, 1, 2, 2])
        let eosCount = items.filter { if case .endOfStream = $0 { true } else { false } }.count
        #expect(eosCount == 1)
        guard case .endOfStream? = items.last else {
            Issue.record("end-of-stream must be the last item")
            return
        }
        #expect(h.isFinished)
    }

    @Test func sourcesStayInOrderAndEndIndependently() throws {
        let h = try harness("""
        nodes:
          cam1: {type: synthetic}
          cam10: {type: synthetic}
          rec: {type: recorder, concurrency: 3}
          sink: {type: capture}
        edges:
          - cam1 -> rec
          - cam10 -> rec
          - rec -> sink
        """, file: "lanes")
        for i in 0..<20 {
            h.emit(frame("cam1", i), fromSource: "cam1")
            h.emit(frame("cam10", i), fromSource: "cam10")
            if i % 3 == 0 { h.runUntilIdle() }
        }
        h.endStream("cam1")
        h.runUntilIdle()
        #expect(!h.isFinished)  // cam10 is still open
        h.endStream("cam10")
        h.runUntilIdle()
        let items = CaptureSink.items(for: "sink")
        #expect(indices(items, source: "cam1") == Array(0..<20))
        #expect(indices(items, source: "cam10") == Array(0..<20))
        #expect(h.isFinished)
    }

    @Test func nodeErrorIsPostedAndTheRestFlows() throws {
        let h = try harness("""
        nodes:
          cam: {type: synthetic}
          rec: {type: recorder}
          sink: {type: capture}
        edges:
          - cam -> rec
          - rec -> sink
        """, file: "errors")
        h.emit(frame("cam", 1), fromSource: "cam")
        h.emit(frame("cam", 999), fromSource: "cam")
        h.emit(frame("cam", 2), fromSource: "cam")
        h.runUntilIdle()
        let items = CaptureSink.items(for: "sink")
        #expect(indices(items) == [1, 2])
        let errors = items.compactMap { if case .status(let s) = $0, s.kind == .error { s } else { nil } }
        #expect(errors.count == 1)
        #expect(errors.first?.failure?.message == "bad frame")
        #expect(errors.first?.failure?.node == "rec")
        #expect(h.runtime.metrics.snapshot().nodes["rec"]?.errors == 1)
    }

    @Test func heartbeatFollowsTheManualClock() throws {
        let h = try harness("""
        heartbeat: 2
        nodes:
          cam: {type: synthetic}
          sink: {type: capture}
        edges:
          - {from: cam, to: sink, policy: drop-oldest, capacity: 1}
        """, file: "heartbeat")
        func heartbeats() -> [StatusEvent] {
            CaptureSink.items(for: "sink").compactMap { if case .status(let s) = $0, s.kind == .heartbeat { s } else { nil } }
        }
        h.advance(by: 1.9)
        #expect(heartbeats().isEmpty)
        h.advance(by: 0.1)
        #expect(heartbeats().count == 1)
        // Drops since the last heartbeat produce a per-source drops message with the next one.
        for i in 0..<4 { h.emit(frame("cam", i), fromSource: "cam") }
        h.advance(by: 2)
        #expect(heartbeats().count == 2)
        let drops = CaptureSink.items(for: "sink").compactMap { if case .status(let s) = $0, s.kind == .drops { s } else { nil } }
        #expect(drops.count == 1)
        #expect(drops.first?.dropCounters?.droppedInGraph == 3)
        // A long stall yields one heartbeat, not a burst.
        h.advance(by: 11)
        #expect(heartbeats().count == 3)
        #expect(heartbeats().last?.heartbeat?.sources["cam"]?.framesIn == 4)
    }

    @Test func syntheticSourceRunsThroughTheRealLoop() throws {
        let h = try harness("""
        nodes:
          cam: {type: synthetic, count: 25, size: 8x8}
          rec: {type: recorder}
          sink: {type: capture}
        edges:
          - {from: cam, to: rec, capacity: 2}
          - rec -> sink
        """, file: "synthetic")
        h.runSource("cam")
        h.runUntilIdle()
        #expect(indices(CaptureSink.items(for: "sink")) == Array(0..<25))
        #expect(h.isFinished)
    }
}

extension StatusEvent {
    var failure: NodeFailure? { if case .error(let f) = detail { f } else { nil } }
    var dropCounters: SourceCounters? { if case .drops(let c) = detail { c } else { nil } }
    var heartbeat: Heartbeat? { if case .heartbeat(let h) = detail { h } else { nil } }
}
