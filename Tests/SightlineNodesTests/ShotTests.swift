import Foundation
import Testing
import SightlineCore
@testable import SightlineGraph
import SightlineMedia
@testable import SightlineNodes
import SightlineTestSupport

/// Shot detection as timelines: synthetic signatures in, exact shots out.
@Suite struct ShotDetectorTimelineTests {
    /// A picture whose grey levels spread evenly over luma ± 40 (so a small brightness change
    /// moves a little of the histogram, as in real footage).
    static func picture(_ luma: Float) -> ShotSignature {
        var h = [Float](repeating: 0, count: 32)
        let values = (0..<81).map { min(255, max(0, luma - 40 + Float($0))) }
        for v in values { h[min(31, Int(v / 8))] += 1 / Float(values.count) }
        return ShotSignature(histogram: h, grid: [Float](repeating: luma, count: 144), meanLuma: luma)
    }

    private func run(_ frames: [(Double, Float)], threshold: Float = 0.3, minLength: Double = 0.5) -> [ShotDetector.Segment] {
        var detector = ShotDetector(threshold: threshold, minLength: minLength)
        var shots = frames.compactMap { detector.push(time: $0.0, signature: Self.picture($0.1)) }
        if let last = detector.finish(at: frames.last?.0 ?? 0) { shots.append(last) }
        return shots
    }

    @Test func hardCutsAreFoundAtTheFirstNewFrame() {
        let frames = (0..<30).map { i -> (Double, Float) in (Double(i) / 10, i < 12 ? 100 : (i < 25 ? 200 : 60)) }
        let shots = run(frames)
        #expect(shots.map(\.start) == [0, 1.2, 2.5])
        #expect(shots.map(\.end) == [1.2, 2.5, 2.9])
        #expect(shots.map(\.reason.rawValue) == ["cut", "cut", "end"])
    }

    @Test func framesTheSamplerSawNoCutBeforeStartNoShotByChange() {
        // Adaptive sampling during a pan: kept frames 0.5 s apart look like different pictures,
        // but the sampler compared every decoded frame between them and found no cut.
        let frames: [(Double, Float)] = [(0, 60), (0.5, 120), (1, 180), (1.5, 220), (2, 220)]
        var detector = ShotDetector()
        var shots = frames.enumerated().compactMap { i, f in detector.push(time: f.0, signature: Self.picture(f.1), mayCut: i == 0) }
        if let last = detector.finish(at: 2) { shots.append(last) }
        #expect(shots.map(\.start) == [0] && shots.map(\.reason.rawValue) == ["end"])
        // Told nothing, the same frames are cuts.
        #expect(run(frames).count > 1)
        // A fade back from black still starts a shot.
        var fading = ShotDetector()
        let fade: [(Double, Float)] = [(0, 100), (0.5, 8), (1, 8), (1.5, 100), (2, 100)]
        let faded = fade.compactMap { fading.push(time: $0.0, signature: Self.picture($0.1), mayCut: false) }
        #expect(faded.map(\.reason.rawValue) == ["fade"] && faded.first?.end == 1.5)
    }

    @Test func underSparseSamplingEachOfTwoKeptFramesInARowCanStartAShot() {
        // Shot-aware sampling passes one frame per still shot: every frame is a new picture.
        let frames: [(Double, Float)] = [(0, 100), (1.6, 200), (3.2, 40), (4.8, 160), (6.36, 160)]
        let shots = run(frames)
        #expect(shots.map(\.start) == [0, 1.6, 3.2, 4.8])
        #expect(shots.map(\.reason.rawValue) == ["cut", "cut", "cut", "end"])
    }

    @Test func aShotLongerThanTheLimitEndsAsAWindowAtTheFirstFramePastIt() {
        // A still camera at one frame per 7 s for 20 minutes, with one real cut at 500 s.
        let frames = stride(from: 0.0, through: 1200, by: 7).map { t -> (Double, Float) in (t, t < 500 ? 100 : 200) }
        var detector = ShotDetector(maxLength: 300)
        var shots = frames.compactMap { detector.push(time: $0.0, signature: Self.picture($0.1)) }
        if let last = detector.finish(at: 1197) { shots.append(last) }
        // 301 is the first frame 300 s after 0; the cut at 504 restarts the count; 805 and 1106 are windows again.
        #expect(shots.map(\.start) == [0, 301, 504, 805, 1106])
        #expect(shots.map(\.reason.rawValue) == ["window", "cut", "window", "window", "end"])
        #expect(shots.map(\.index) == [0, 1, 2, 3, 4])
        #expect(shots.dropLast().allSatisfy { $0.end - $0.start <= 300 + 7 })
        // No limit: the same frames make two shots.
        var unlimited = ShotDetector()
        #expect(frames.compactMap { unlimited.push(time: $0.0, signature: Self.picture($0.1)) }.map(\.start) == [0])
    }

    @Test func aCutPendingAtTheLimitIsSettledFirst() {
        // The frame at 10 s is both the first past the 10 s limit and a cut candidate: the next
        // frame confirms the cut, so the shot ends as a cut there, not as a window; the next
        // shot then counts from the cut.
        let frames: [(Double, Float)] = [(0, 100), (5, 100), (10, 200), (15, 200), (20, 200)]
        var detector = ShotDetector(maxLength: 10)
        let shots = frames.compactMap { detector.push(time: $0.0, signature: Self.picture($0.1)) }
        #expect(shots.map(\.end) == [10, 20] && shots.map(\.reason.rawValue) == ["cut", "window"])
        // A flash at the limit: the window ends at the frame after it.
        let flash: [(Double, Float)] = [(0, 100), (5, 100), (10, 250), (15, 100), (20, 100)]
        var flashing = ShotDetector(maxLength: 10)
        let flashed = flash.compactMap { flashing.push(time: $0.0, signature: Self.picture($0.1)) }
        #expect(flashed.map(\.end) == [15] && flashed.map(\.reason.rawValue) == ["window"])
    }

    @Test func aOneFrameFlashIsNotACut() {
        let frames = (0..<20).map { i -> (Double, Float) in (Double(i) / 10, i == 8 ? 250 : 100) }
        #expect(run(frames).count == 1)
    }

    @Test func cutsCloserThanTheMinimumLengthAreMerged() {
        let frames = (0..<20).map { i -> (Double, Float) in (Double(i) / 10, i < 5 ? 100 : (i < 7 ? 200 : 40)) }
        let shots = run(frames, minLength: 0.5)
        #expect(shots.map(\.start) == [0, 0.5])  // the cut at 0.7 comes 0.2 s after 0.5: dropped
    }

    @Test func fadeThroughBlackCutsWhereThePictureReturns() {
        // 100 fading down by 10s to black (no single step is a cut), black, then back up.
        var frames: [(Double, Float)] = []
        let levels: [Float] = [100, 100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 4, 4, 4, 12, 24, 36, 48, 60, 72]
        for (i, l) in levels.enumerated() { frames.append((Double(i) / 10, l)) }
        let shots = run(frames)
        // Black (< 16) from 1.0 s to 1.4 s; 24 at 1.5 s is the first frame of the new shot.
        #expect(shots.first?.reason.rawValue == "fade")
        #expect(shots.first.map { abs($0.end - 1.5) < 1e-9 } == true)
        #expect(shots.count == 2)
    }
}

/// A slideshow of real photos with known cut times, through the real decoder and the node.
@Suite struct ShotsNodeTests {
    /// At full rate, and with shot-aware sampling that passes a few frames of 200 on: the cuts
    /// land within one frame either way.
    @Test(arguments: ["", ", sampling: adaptive"])
    func slideshowCutsWithinOneFrame(sampling: String) throws {
        let photos = try SamplePhotos.all()
        let names = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png"]
        var args = ["-v", "error", "-y"]
        for name in names { args += ["-loop", "1", "-framerate", "25", "-i", try #require(photos[name])] }
        // Exactly 40 frames (1.6 s) per photo, so the cuts are at 1.6, 3.2 and 4.8 s.
        let filter = (0..<names.count).map { "[\($0):v]scale=320:240,setsar=1,trim=end_frame=40,setpts=PTS-STARTPTS[v\($0)]" }.joined(separator: ";")
            + ";" + (0..<names.count).map { "[v\($0)]" }.joined() + "concat=n=\(names.count):v=1:a=0[out]"
        let video = Fixtures.shared.directory + "/shot-slideshow-\(UUID().uuidString).mp4"  // unique: suites run in parallel in one process
        try Tool.run("ffmpeg", args + ["-filter_complex", filter, "-map", "[out]", "-c:v", "libx264", "-pix_fmt", "yuv420p", video])

        let sink = sampling.isEmpty ? "shot_sink" : "shot_sink_adaptive"   // captures are kept by node id
        let shots = try Self.shots(video: video, source: "size: 160x120\(sampling)", sink: sink)
        #expect(shots.count == 4)
        let cuts = shots.dropFirst().map(\.start)
        for (found, expected) in zip(cuts, [1.6, 3.2, 4.8]) {
            #expect(abs(found - expected) <= 0.04 + 1e-6, "cut at \(found), expected \(expected) ± one frame")
        }
        let frames = CaptureSink.items(for: sink).filter { if case .frame = $0 { true } else { false } }.count
        if sampling.isEmpty {
            #expect(frames == 160)
        } else {
            #expect(frames <= 10, "shot-aware sampling passed \(frames) of 160 frames on")   // two per still photo, and the last
        }
    }

    /// `video` through a source (with `source` options) and a shots node into capture node
    /// `sink` (captures are kept by node id): the shots records.
    static func shots(video: String, source: String, sink: String) throws -> [Record] {
        var registry = BuiltinNodes.registry
        registry.register(CaptureSink.factory)
        let (spec, errors) = PipelineParser.parse(text: """
        nodes:
          cam: {type: source, url: "\(video)", \(source)}
          shots: {type: shots}
          \(sink): {type: capture}
        edges:
          - cam -> shots
          - shots -> \(sink)
        """, file: sink)
        #expect(errors.isEmpty)
        let harness = try GraphHarness(pipeline: try PipelineValidator.validate(#require(spec), registry: registry).get(), registry: registry)
        harness.runSource("cam")
        harness.runUntilIdle()
        return CaptureSink.items(for: sink).compactMap { item -> Record? in
            if case .record(let r) = item, r.kind == .shots { return r }
            return nil
        }
    }
}

/// A camera panning across a scene whose brightness changes from side to side, through the
/// real decoder and the node: frames half a second apart differ like a cut, neighbouring frames
/// do not. Shot-aware sampling knows it compared every frame, so the pan stays one shot.
@Suite struct PanShotsTests {
    @Test func aPanIsOneShotUnderShotAwareSampling() throws {
        let video = Fixtures.shared.directory + "/shot-pan-\(UUID().uuidString).mp4"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=black:s=1280x180:r=25:d=4",
                                "-vf", "geq=lum='X/5':cb=128:cr=128,crop=320:180:x='min(960,t*320)':y=0",
                                "-c:v", "libx264", "-pix_fmt", "yuv420p", video])
        // Two frames a second compared with each other: the pan looks like cuts.
        #expect(try ShotsNodeTests.shots(video: video, source: "size: 160x90, fps: 2", sink: "pan_fixed").count > 1)
        let adaptive = try ShotsNodeTests.shots(video: video, source: "size: 160x90, sampling: adaptive", sink: "pan_adaptive")
        #expect(adaptive.count == 1, "\(adaptive.map(\.start))")
    }

    /// The sampler's cut measure is the floor for the shots node's threshold, so a source can
    /// lower it (`cut`, default 0.3, the shots node's default).
    @Test func theSourcesCutOptionReachesTheSampler() {
        func cut(_ values: [String: OptionValue]) -> Float? {
            let options = VideoSourceNode.sourceOptions(sourceID: "cam", url: "clip.mp4",
                                                        options: NodeOptions(values.merging(["sampling": .string("adaptive")]) { a, _ in a }))
            guard case .adaptive(let settings) = options.sampling else { return nil }
            return settings.cut
        }
        #expect(cut([:]) == 0.3)
        #expect(cut(["cut": .double(0.15)]) == 0.15)
    }
}

@Suite struct FixedWindowTests {
    @Test func windowsOfMediaTimeFromTheFirstFrame() throws {
        let node = ShotsNode(threshold: 0.3, minLength: 0.5, window: 2)
        let context = try TestContext()
        var shots: [Record] = []
        for t in [0.5, 1.5, 2.5, 3.0, 4.5, 5.0] {
            let frame = Frame(sourceID: "cam", decodeIndex: Int(t * 2), timestamp: Timestamp(pts: Int64(t * 2), timeBase: Rational(1, 2)),
                              seconds: t, ingestWallClock: 0, isKeyframe: true, width: 4, height: 4, pixelFormat: .gray8,
                              pixels: [UInt8](repeating: UInt8(t * 40), count: 16))
            try node.process(.frame(frame), context: context) { if case .record(let r) = $0 { shots.append(r) } }
        }
        try node.process(.endOfStream(EndOfStream(sourceID: "cam")), context: context) { if case .record(let r) = $0 { shots.append(r) } }
        #expect(shots.map { [$0.start, $0.end] } == [[0.5, 2.5], [2.5, 4.5], [4.5, 5.0]])
        #expect(shots.map { $0.data["ended_by"]?.stringValue } == ["window", "window", "end"])
        #expect(shots.map { $0.data["index"]?.intValue } == [0, 1, 2])
    }

    /// A live source lost its data for 14 s between 1.0 and 15.0: the window (and, without
    /// windows, the shot) ends at the last frame before the outage instead of spanning it.
    @Test(arguments: [2.0, 0.0])
    func anOutageEndsTheSegment(window: Double) throws {
        let node = ShotsNode(threshold: 0.3, minLength: 0.5, window: window)
        let context = try TestContext()
        var shots: [Record] = []
        for t in [0.0, 0.5, 1.0, 15.0, 15.5, 16.0, 16.5, 17.5] {
            var frame = Frame(sourceID: "cam", decodeIndex: Int(t * 2), timestamp: Timestamp(pts: Int64(t * 2), timeBase: Rational(1, 2)),
                              seconds: t, ingestWallClock: 0, isKeyframe: true, width: 4, height: 4, pixelFormat: .gray8,
                              pixels: [UInt8](repeating: 100, count: 16))
            if t == 15.0 { frame.gapBefore = 14 }
            try node.process(.frame(frame), context: context) { if case .record(let r) = $0 { shots.append(r) } }
        }
        try node.process(.endOfStream(EndOfStream(sourceID: "cam")), context: context) { if case .record(let r) = $0 { shots.append(r) } }
        #expect(shots.first.map { [$0.start, $0.end] } == [0.0, 1.0])
        #expect(shots.first?.data["ended_by"]?.stringValue == "gap")
        #expect(shots.dropFirst().first?.start == 15.0)
        #expect(shots.allSatisfy { !($0.start < 1.0 + 1e-9 && $0.end > 1.0 + 1e-9) }, "no segment spans the outage: \(shots.map { [$0.start, $0.end] })")
        #expect(shots.map { Int($0.data["index"]?.intValue ?? -1) } == Array(0..<shots.count))
    }
}

