import Foundation
import Testing
import SightlineCore
@testable import SightlineGraph
@testable import SightlineNodes
import SightlineTestSupport

@Suite struct PerceptualHashTests {
    private func image(_ f: (Int, Int) -> Float) -> [Float] {
        (0..<32 * 32).map { f($0 % 32, $0 / 32) }
    }

    @Test func separableDCTMatchesTheReference() {
        var seed: UInt64 = 1
        let pixels = (0..<1024).map { _ -> Float in
            seed = seed &* 6364136223846793005 &+ 1
            return Float(seed >> 56)
        }
        let fast = PerceptualHashNode.lowFrequencyDCT(pixels, size: 32, keep: 8)
        let reference = PerceptualHashNode.referenceDCT(pixels, size: 32, keep: 8)
        let error = zip(fast, reference).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
        let energy = reference.map { Double($0) * Double($0) }.reduce(0, +)
        #expect(error / energy < 1e-10)
    }

    @Test func similarImagesAreCloseDifferentOnesFar() {
        let gradient = image { x, y in 128 + 60 * sin(Float(x) / 3) * cos(Float(y) / 5) + 40 * cos(Float(x + y) / 7) }
        let brighter = gradient.map { $0 + 10 }
        let noisy = gradient.enumerated().map { i, v in v + Float((i * 7919) % 5) - 2 }
        let checker = image { x, y in ((x / 4 + y / 4) % 2 == 0) ? 255 : 0 }
        let h = { PerceptualHashNode.hash(LumaThumbnail(width: 32, height: 32, values: $0)) }
        #expect((h(gradient) ^ h(brighter)).nonzeroBitCount <= 2)
        #expect((h(gradient) ^ h(noisy)).nonzeroBitCount <= 6)
        #expect((h(gradient) ^ h(checker)).nonzeroBitCount >= 20)
    }
}

@Suite struct FrameStatsTests {
    private func frame(_ value: UInt8, format: PixelFormat = .rgb24, index: Int = 0) -> Frame {
        Frame(sourceID: "s", decodeIndex: index, timestamp: Timestamp(pts: Int64(index), timeBase: Rational(1, 1)),
              seconds: Double(index), ingestWallClock: 0, isKeyframe: true, width: 16, height: 9, pixelFormat: format,
              pixels: [UInt8](repeating: value, count: 16 * 9 * format.bytesPerPixel))
    }

    @Test func meanLumaOfFlatFrames() {
        #expect(FrameStatsNode.meanLuma(frame(200)) == 200)
        #expect(FrameStatsNode.meanLuma(frame(37, format: .gray8)) == 37)
        var red = frame(0)
        for i in stride(from: 0, to: red.pixels.count, by: 3) { red.pixels[i] = 255 }
        #expect(FrameStatsNode.meanLuma(red) == 76)  // (77·255) >> 8
        red.pixelFormat = .bgr24  // the same bytes read as BGR are blue
        #expect(FrameStatsNode.meanLuma(red) == 28)  // (29·255) >> 8
    }

    @Test func motionIsZeroForStillAndOneForBlackToWhite() throws {
        let node = FrameStatsNode(histogramBins: 4)
        var records: [Record] = []
        let context = try TestContext()
        for (index, value) in [0, 0, 255].enumerated() {
            try node.process(.frame(frame(UInt8(value), index: index)), context: context) { item in
                if case .record(let r) = item { records.append(r) }
            }
        }
        #expect(records.map { $0.data["motion"] } == [.null, .double(0), .double(1)])
        #expect(records[2].vector == [0, 0, 0, 1])
        #expect(records[0].vector == [1, 0, 0, 0])
    }
}

/// A context for calling a node directly.
final class TestContext: NodeContext, @unchecked Sendable {
    let clock: any GraphClock = ManualClock()
    let pipelineName = "test"
    let pipelineHash = "0"
    let metrics = GraphMetrics()
    var posted: [StatusEvent] = []
    init() throws {}
    func post(_ status: StatusEvent) { posted.append(status) }
}

/// The real decoder inside the graph, on the harness.
@Suite struct SourceNodeTests {
    /// `mode: sampled` skips what N-per-second sampling will not keep: without fps, or under
    /// adaptive sampling, there is nothing to plan by, and the node says so.
    @Test func sampledModeNeedsFixedPerSecondSampling() throws {
        #expect(throws: SightlineError.self) { try VideoSourceNode.checkSampling(NodeOptions(["mode": .string("sampled")])) }
        #expect(throws: SightlineError.self) {
            try VideoSourceNode.checkSampling(NodeOptions(["mode": .string("sampled"), "fps": .string("2"), "sampling": .string("adaptive")]))
        }
        try VideoSourceNode.checkSampling(NodeOptions(["mode": .string("sampled"), "fps": .string("2")]))
        let options = VideoSourceNode.sourceOptions(sourceID: "cam", url: "udp://127.0.0.1:5000", options: NodeOptions(["mode": .string("sampled"), "fps": .string("2")]))
        #expect(options.mode == .sampled && options.sampling == .perSecond(Rational(2, 1)))
    }

    @Test func decodedFramesFlowThroughStatsToTheSink() throws {
        let path = try Fixtures.shared.clip(Fixtures.small)  // 30 fps, 3 s
        var registry = BuiltinNodes.registry
        registry.register(CaptureSink.factory)
        let (spec, errors) = PipelineParser.parse(text: """
        nodes:
          cam: {type: source, url: "\(path)", fps: 2, size: 32x24}
          stats: {type: frame_stats}
          decoded_sink: {type: capture}
        edges:
          - {from: cam, to: stats, capacity: 2}
          - stats -> decoded_sink
        """, file: "source-node")
        #expect(errors.isEmpty)
        let harness = try GraphHarness(pipeline: try PipelineValidator.validate(#require(spec), registry: registry).get(), registry: registry)
        harness.runSource("cam")
        harness.runUntilIdle()
        let items = CaptureSink.items(for: "decoded_sink")
        let records = items.compactMap { if case .record(let r) = $0 { r } else { nil } }
        #expect(records.map(\.start) == [0, 0.5, 1, 1.5, 2, 2.5])
        let started = items.compactMap { if case .status(let s) = $0, s.kind == .started { s } else { nil } }
        #expect(started.first?.data["codec"] == "h264")
        guard case .endOfStream(let eos)? = items.last else {
            Issue.record("end-of-stream must come last")
            return
        }
        #expect(eos.data["frames_decoded"] == .int(90))
        #expect(eos.data["frames_emitted"] == .int(6))
    }

    @Test func aSourceThatCannotOpenEndsOnlyItsBranch() throws {
        let good = try Fixtures.shared.clip(Fixtures.small)
        var registry = BuiltinNodes.registry
        registry.register(CaptureSink.factory)
        let (spec, _) = PipelineParser.parse(text: """
        nodes:
          bad: {type: source, url: /no/such/file.mp4}
          good: {type: source, url: "\(good)", every: 30}
          stats: {type: frame_stats}
          failing_sink: {type: capture}
        edges:
          - bad -> stats
          - good -> stats
          - stats -> failing_sink
        """, file: "failing-source")
        let harness = try GraphHarness(pipeline: try PipelineValidator.validate(#require(spec), registry: registry).get(), registry: registry)
        harness.runSource("bad")
        harness.runSource("good")
        harness.runUntilIdle()
        let items = CaptureSink.items(for: "failing_sink")
        let goodRecords = items.filter { if case .record(let r) = $0 { r.sourceID == "good" } else { false } }
        #expect(goodRecords.count == 3)
        let errors = items.compactMap { if case .status(let s) = $0, s.kind == .error { s } else { nil } }
        #expect(errors.first?.sourceID == "bad")
        #expect(errors.first?.data["message"]?.stringValue?.contains("/no/such/file.mp4") == true)
        #expect(harness.runtime.failedSources.keys.sorted() == ["bad"])
        #expect(harness.isFinished)
    }
}
