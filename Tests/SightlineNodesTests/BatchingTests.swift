import Foundation
import Testing
import SightlineCore
@testable import SightlineGraph
@testable import SightlineNodes

private func add<T>(_ batcher: inout DynamicBatcher<T>, _ element: T, isWork: Bool, now: Double) -> Bool {
    batcher.add(element, isWork: isWork, now: now)
}

private func take<T>(_ batcher: inout DynamicBatcher<T>) -> [T] { batcher.take() }

@Suite struct DynamicBatcherTimelineTests {
    @Test func releasesWhenFullOrWhenTheOldestHasWaitedLongEnough() {
        var batcher = DynamicBatcher<Int>(maxBatch: 3, maxWait: 0.1)
        #expect(batcher.deadline == nil)
        #expect(!add(&batcher, 1, isWork: true, now: 10.00))
        #expect(batcher.deadline == 10.1)
        #expect(!add(&batcher, 2, isWork: false, now: 10.02))   // a record waits in place
        #expect(!add(&batcher, 3, isWork: true, now: 10.05))
        #expect(batcher.deadline == 10.1)                   // the oldest frame sets the deadline
        #expect(!batcher.isDue(now: 10.099))
        #expect(batcher.isDue(now: 10.1))
        #expect(take(&batcher) == [1, 2, 3])
        #expect(batcher.isEmpty && batcher.deadline == nil)

        #expect(!add(&batcher, 4, isWork: true, now: 11))
        #expect(!add(&batcher, 5, isWork: true, now: 11))
        #expect(add(&batcher, 6, isWork: true, now: 11))      // full: due at once
        #expect(take(&batcher) == [4, 5, 6])
    }

    @Test func batchOfOneNeverWaits() {
        var batcher = DynamicBatcher<String>(maxBatch: 1, maxWait: 5)
        #expect(add(&batcher, "a", isWork: true, now: 0))
        #expect(take(&batcher) == ["a"])
    }

    @Test func recordsAloneAreNeverDue() {
        var batcher = DynamicBatcher<String>(maxBatch: 2, maxWait: 0)
        #expect(!add(&batcher, "r", isWork: false, now: 0))
        #expect(!batcher.isDue(now: 100))
    }
}

/// The batching stage inside a running graph, on the harness's manual clock.
@Suite(.serialized) struct FrameBatchStageTests {
    /// A model node whose "model" records the batch sizes it was called with.
    final class FakeModel: BatchedModelNode {
        nonisolated(unsafe) static var batches: [Int] = []
        static let descriptor = NodeDescriptor(name: "fake_model", description: "test", role: .transform, inputs: .frames, outputs: .any, options: FrameBatchStage.options)
        static let factory = NodeFactory(descriptor: descriptor) { _, options in .processor(FakeModel(batching: options, name: "fake")) }

        override func infer(_ frames: [Frame]) throws -> [[Record]] {
            Self.batches.append(frames.count)
            if frames.contains(where: { $0.decodeIndex == 13 }) { throw CocoaError(.fileReadCorruptFile) }
            return frames.map { [Record(.nsfw(NSFWScore(frameIndex: $0.decodeIndex, score: 0)), frame: $0)] }
        }
    }

    let registry = NodeRegistry([SyntheticSource.factory, CaptureSink.factory, FakeModel.factory])

    private func harness(batch: Int, waitMs: Double, capture: String) throws -> GraphHarness {
        let yaml = """
        pipeline: batching
        nodes:
          cam: {type: synthetic}
          model: {type: fake_model, batch: \(batch), max_wait_ms: \(waitMs)}
          \(capture): {type: capture}
        edges:
          - cam -> model
          - model -> \(capture)
        """
        let (spec, errors) = PipelineParser.parse(text: yaml, file: "batching.yaml")
        #expect(errors.isEmpty)
        let pipeline = try PipelineValidator.validate(#require(spec), registry: registry).get()
        return try GraphHarness(pipeline: pipeline, registry: registry)
    }

    private func frame(_ index: Int) -> Item {
        .frame(Frame(sourceID: "cam", decodeIndex: index, timestamp: Timestamp(pts: Int64(index), timeBase: Rational(1, 10)),
                     seconds: Double(index) / 10, ingestWallClock: 0, isKeyframe: false, width: 1, height: 1, pixelFormat: .gray8, pixels: [0]))
    }

    /// "s3" for the record of frame 3, "f3" for frame 3 itself, "eos" for end-of-stream.
    private func trace(_ id: String) -> [String] {
        CaptureSink.items(for: id).compactMap { item in
            switch item {
            case .frame(let f): "f\(f.decodeIndex)"
            case .record(let r): "s\(r.data["frame_index"]?.intValue ?? -1)"
            case .endOfStream: "eos"
            case .status: nil
            }
        }
    }

    @Test func fullBatchesGoAtOnceAndAPartialOneAtItsDeadline() throws {
        FakeModel.batches = []
        let h = try harness(batch: 3, waitMs: 100, capture: "batching_sink_a")
        h.emit(frame(0), fromSource: "cam")
        h.emit(frame(1), fromSource: "cam")
        h.runUntilIdle()
        #expect(trace("batching_sink_a").isEmpty)           // waiting for a third frame
        h.advance(by: 0.05)
        #expect(trace("batching_sink_a").isEmpty)           // 50 ms < 100 ms
        h.advance(by: 0.06)
        #expect(trace("batching_sink_a") == ["s0", "f0", "s1", "f1"])
        for i in 2...4 { h.emit(frame(i), fromSource: "cam") }
        h.runUntilIdle()
        #expect(trace("batching_sink_a").count == 10)       // full batch, no waiting
        h.emit(frame(5), fromSource: "cam")
        h.endStream("cam")
        h.runUntilIdle()
        #expect(trace("batching_sink_a").suffix(3) == ["s5", "f5", "eos"])  // held frame goes before end-of-stream
        #expect(FakeModel.batches == [2, 3, 1])
        #expect(h.isFinished)
    }

    @Test func aFailingFrameCostsOnlyItself() throws {
        FakeModel.batches = []
        let h = try harness(batch: 4, waitMs: 1000, capture: "batching_sink_b")
        for i in 11...14 { h.emit(frame(i), fromSource: "cam") }
        h.runUntilIdle()
        #expect(trace("batching_sink_b") == ["s11", "f11", "s12", "f12", "s14", "f14"])
        #expect(FakeModel.batches == [4, 1, 1, 1, 1])       // the batch, then each frame alone
        #expect(h.runtime.metrics.snapshot().nodes["model"]?.errors == 1)
    }
}
