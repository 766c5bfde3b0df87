import Foundation
import Testing
import SightlineCore
import SightlineMedia
@testable import SightlineInference
import SightlineModels
@testable import SightlineNodes
import SightlineTestSupport

/// Delta execution on the real models: with the exact mask (region selector threshold 0) every
/// layer's cached value equals a dense run on the new frame; with a noise threshold the error
/// stays small.
@Suite(.serialized) struct DeltaInferenceTests {
    static func decode(_ path: String) throws -> Frame {
        let source = VideoSource(url: path, options: SourceOptions(output: OutputFormat(pixelFormat: .rgb24)))
        while let event = try source.next() {
            if case .frame(let frame) = event { return frame }
        }
        throw ModelError.missing("no frame in \(path)")
    }

    static func efficientNet() throws -> EfficientNetLite0 {
        let store = ModelStore()
        try store.fetch(ModelZoo.efficientNetLite0)
        return try EfficientNetLite0(store: store, threads: 2)
    }

    /// A real photo, and the same photo with a 60×40 patch changed (a person walks in).
    static func frames() throws -> (Frame, Frame) {
        let photo = try #require(try SamplePhotos.all()["coffee.png"])
        let first = try Self.decode(photo)
        var second = first
        second.decodeIndex = 1
        for y in 150..<190 {
            for x in 300..<360 {
                let o = (y * second.width + x) * 3
                for c in 0..<3 { second.pixels[o + c] = 255 &- second.pixels[o + c] }
            }
        }
        return (first, second)
    }

    static func nmse(_ a: [Float], _ b: [Float]) -> Double {
        var error = 0.0, energy = 1e-30
        for (x, y) in zip(a, b) {
            error += Double(x - y) * Double(x - y)
            energy += Double(y) * Double(y)
        }
        return error / energy
    }

    /// Every value the delta run cached equals the dense run's, layer by layer.
    static func expectEveryLayerEqual(_ delta: DeltaState, _ dense: DeltaState, model: String) {
        #expect(delta.values.count == dense.values.count)
        var compared = 0
        for (name, value) in dense.values {
            guard let mine = delta.values[name] else {
                Issue.record("\(model): no cached value \(name)")
                continue
            }
            let error = nmse(mine.asFloat.data, value.asFloat.data)
            #expect(error <= 1e-6, "\(model): value \(name) NMSE \(error)")
            compared += 1
        }
        #expect(compared > 20)
    }

    @Test func efficientNetThresholdZeroEqualsDenseAtEveryLayer() throws {
        let (first, second) = try Self.frames()
        let model = try Self.efficientNet()
        var selector = RegionSelector(tileSize: 16, threshold: 0, skipBelow: 0, fullAbove: 0.9, refreshEvery: 100)
        let state = DeltaState()
        _ = selector.push(first)
        _ = try model.classifyDelta(first, tiles: nil, state: state)
        let decision = selector.push(second)
        #expect(!decision.refresh && decision.changedFraction > 0 && decision.changedFraction < 0.05)
        let (result, stats) = try model.classifyDelta(second, tiles: decision.tiles, state: state)
        let denseState = DeltaState()
        let (denseResult, denseStats) = try model.classifyDelta(second, tiles: nil, state: denseState)
        Self.expectEveryLayerEqual(state, denseState, model: "efficientnet-lite0")
        #expect(Self.nmse(result.probabilities, denseResult.probabilities) <= 1e-6)
        #expect(Self.nmse(result.features, try model.classify([second])[0].features) <= 1e-6, "equal to the ordinary executor")
        #expect(stats.maskedConvolutions > 10)
        // The change reaches most of the deep, low-resolution layers; the saving is in the early ones.
        #expect(stats.computedMACs < 0.8 * denseStats.computedMACs, "work saved: \(stats.savedFraction)")
    }

    @Test func openNSFWThresholdZeroEqualsDenseAtEveryLayer() throws {
        let (first, second) = try Self.frames()
        let store = ModelStore()
        try store.fetch(ModelZoo.openNSFW)
        let model = try NSFWClassifier(store: store)
        var selector = RegionSelector(tileSize: 16, threshold: 0, skipBelow: 0, fullAbove: 0.9, refreshEvery: 100)
        let state = DeltaState()
        _ = selector.push(first)
        _ = try model.scoreDelta(first, tiles: nil, state: state)
        let (score, stats) = try model.scoreDelta(second, tiles: selector.push(second).tiles, state: state)
        let denseState = DeltaState()
        let (denseScore, _) = try model.scoreDelta(second, tiles: nil, state: denseState)
        Self.expectEveryLayerEqual(state, denseState, model: "open_nsfw")
        #expect(abs(score - denseScore) <= 1e-5)
        #expect(abs(score - (try model.scores([second])[0])) <= 1e-5)
        #expect(stats.maskedConvolutions > 10 && stats.savedFraction > 0.3, "\(stats)")
    }

    @Test func aNoiseThresholdKeepsTheErrorSmall() throws {
        let (first, changed) = try Self.frames()
        var second = changed
        var seed: UInt64 = 5
        for i in second.pixels.indices {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            second.pixels[i] = UInt8(clamping: Int(second.pixels[i]) + Int(seed >> 62) - 1)  // ±1-2 levels of sensor noise
        }
        let model = try Self.efficientNet()
        var selector = RegionSelector(tileSize: 16, threshold: 12, minChangedPixels: 0.02, skipBelow: 0, fullAbove: 0.9, refreshEvery: 100)
        let state = DeltaState()
        _ = selector.push(first)
        _ = try model.classifyDelta(first, tiles: nil, state: state)
        let decision = selector.push(second)
        #expect(decision.changedFraction < 0.05, "noise is not change: \(decision.changedFraction)")
        let (result, _) = try model.classifyDelta(second, tiles: decision.tiles, state: state)
        let dense = try model.classify([second])[0]
        #expect(result.top(1).first?.index == dense.top(1).first?.index)
        let dot = zip(result.features, dense.features).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        let norms = (result.features.reduce(0) { $0 + Double($1) * Double($1) } * dense.features.reduce(0) { $0 + Double($1) * Double($1) }).squareRoot()
        #expect(dot / norms > 0.99)
    }

    /// A moving camera: from the second mostly changed frame in a row the model stops caching
    /// (plain runs, results equal to `classify`); the first calm frame runs dense and caches
    /// again, and the one after it takes the masked path.
    @Test func aMovingCameraStopsCachingAndACalmFrameResumes() throws {
        let (first, second) = try Self.frames()
        let model = try Self.efficientNet()
        let state = DeltaState()
        let columns = (first.width + 15) / 16, rows = (first.height + 15) / 16
        let everything = TileMask(tileSize: 16, columns: columns, rows: rows, bits: [Bool](repeating: true, count: columns * rows))
        var patch = TileMask(tileSize: 16, columns: columns, rows: rows, bits: [Bool](repeating: false, count: columns * rows))
        for y in (150 / 16)...(189 / 16) { for x in (300 / 16)...(359 / 16) { patch.bits[y * columns + x] = true } }
        _ = try model.classifyDelta(first, tiles: nil, state: state)
        var frames = [second, first, second, first]
        for (i, frame) in frames.enumerated() {
            let (result, stats) = try model.classifyDelta(frame, tiles: everything, state: state)
            #expect(stats.maskedConvolutions == 0 && stats.savedFraction == 0)
            // The refresh before the loop counts as the first moving frame.
            #expect(state.isEmpty, "frame \(i): caching stops from the second moving frame on")
            let dense = try model.classify([frame])[0]
            #expect(Self.nmse(result.features, dense.features) < 1e-10)
        }
        frames = [second, first]
        let (_, calm) = try model.classifyDelta(frames[0], tiles: patch, state: state)
        #expect(!state.isEmpty && calm.maskedConvolutions == 0, "the first calm frame refills the cache")
        let (result, next) = try model.classifyDelta(frames[1], tiles: patch, state: state)
        #expect(next.maskedConvolutions > 0 && next.savedFraction > 0.2, "\(next)")
        #expect(result.top(1).first?.index == (try model.classify([frames[1]])[0]).top(1).first?.index)
    }
}
