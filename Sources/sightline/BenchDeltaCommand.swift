import ArgumentParser
import Foundation
import SightlineCore
import SightlineInference
import SightlineKernels
import SightlineMedia
import SightlineModels
import SightlineNodes

/// `sightline bench delta`: the CNN nodes (EfficientNet-Lite0 labels + embedding, open_nsfw)
/// dense on every sampled frame vs with the region selector and delta execution, on real
/// clips — wall time, multiply-accumulates, and how far the results agree.
struct BenchDeltaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delta",
        abstract: "Sparse region selection + delta inference vs dense on real clips: CNN time, work, and fidelity (top-1, embedding cosine, NSFW score).",
        discussion: "Delta time includes the region selector's (shown apart). Targets: fixed camera (vtest.avi) ≥ 3× less CNN time with top-1 agreement ≥ 97% and cosine ≥ 0.98; moving cameras never more than 5% slower.")

    @Argument(help: "Clips (default: vtest.avi, bigbuckbunny.mp4, bikes.mp4, fetched by Scripts/fetch-sample).") var clips: [String] = []
    @Option(help: "Sampled frames per second.") var fps: Double = 5
    @Option(help: "Frames per clip at most.") var limit: Int = 150
    @Option(help: "Region selector threshold: luma change per pixel that counts (0 = any byte, exact).") var threshold: Double = 12
    @Option(help: "Fraction of a tile's pixels that must change.") var minPixels: Double = 0.1
    @Option(help: "Tile size in pixels.") var tile: Int = 16
    @Option(help: "Full refresh after this many partial frames.") var refreshEvery: Int = 20
    @Option(help: "Skip a frame (reuse the last results) when fewer tiles than this fraction changed.") var skipBelow: Double = 0.005
    @Option(help: "A layer whose changed outputs exceed this fraction runs dense.") var denseAbove: Double = 0.3
    @Option(help: "A masked run saving less than this fraction of the work makes the next frames run plain for a while.") var minSaving: Double = 0.2
    @Option(help: "Per-layer truncation: changes below this fraction of a layer's mean magnitude stop spreading (0 = none).") var truncation: Float = 0
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        FFmpegLogLevel.quiet.apply()
        KernelThreads.claimCores()
        let store = cache.store
        try store.fetch(ModelZoo.efficientNetLite0)
        try store.fetch(ModelZoo.openNSFW)
        let labels = try EfficientNetLite0(store: store, threads: 1)
        let nsfw = try NSFWClassifier(store: store, threads: 1)
        let paths = try clips.isEmpty ? ["vtest.avi", "bigbuckbunny.mp4", "bikes.mp4"].map(Self.sample) : clips
        print("sightline bench delta — EfficientNet-Lite0 + open_nsfw, 1 thread, \(fps) frames/s, tile \(tile), threshold \(threshold); ratio = dense time ÷ delta time")
        print(pad("clip", 18) + pad("frames", 8) + pad("skipped", 9) + pad("dense ms", 10) + pad("delta ms", 10) + pad("(selector)", 11) + pad("ratio", 8)
              + pad("tiles", 8) + pad("MACs saved", 12) + pad("top-1 agree", 13) + pad("cos mean/min", 15) + pad("nsfw max diff", 15) + "model runs (mean time)")
        for path in paths {
            let frames = try Self.decode(path, fps: fps, limit: limit)
            // Plans for this frame size are built outside the timed loops (the first clip would
            // otherwise charge plan building to the dense pass).
            if let first = frames.first {
                _ = try labels.classify([first])
                _ = try nsfw.scores([first])
            }
            // Dense and delta alternate frame by frame (which goes first alternates too), so a
            // change in the machine's speed during the clip touches both alike.
            var selector = RegionSelector(tileSize: tile, threshold: threshold, minChangedPixels: minPixels, skipBelow: skipBelow, fullAbove: 0.6, refreshEvery: refreshEvery)
            let labelState = DeltaState(), nsfwState = DeltaState()
            var denseTime = 0.0, deltaTime = 0.0, selectorTime = 0.0, denseMACs = 0.0, computedMACs = 0.0, skipped = 0
            var modes: [DeltaSchedule.Mode: Int] = [:], modeTime: [DeltaSchedule.Mode: Double] = [:]
            var last: (EfficientNetLite0.Result, Float)?
            var agree = 0, cosines: [Double] = [], nsfwDiff: Float = 0, changedTiles = 0.0
            for (i, frame) in frames.enumerated() {
                func runDense() throws -> (EfficientNetLite0.Result, Float) {
                    let t0 = monotonicSeconds()
                    defer { denseTime += monotonicSeconds() - t0 }
                    return (try labels.classify([frame])[0], try nsfw.scores([frame])[0])
                }
                // Delta: the region selector decides; skipped frames reuse the last results.
                func runDelta() throws -> (EfficientNetLite0.Result, Float) {
                    let t0 = monotonicSeconds()
                    defer { deltaTime += monotonicSeconds() - t0 }
                    let decision = selector.push(frame)
                    selectorTime += monotonicSeconds() - t0
                    changedTiles += decision.skip ? 0 : (decision.refresh ? 1 : decision.tiles.fraction)
                    if decision.skip, let last {
                        skipped += 1
                        return last
                    }
                    let tiles = decision.refresh ? nil : decision.tiles
                    let t1 = monotonicSeconds()
                    let (r, a) = try labels.classifyDelta(frame, tiles: tiles, state: labelState, denseAbove: denseAbove, truncation: truncation, minSaving: minSaving)
                    let t2 = monotonicSeconds()
                    let (s, b) = try nsfw.scoreDelta(frame, tiles: tiles, state: nsfwState, denseAbove: denseAbove, truncation: truncation, minSaving: minSaving)
                    modeTime[a.mode, default: 0] += t2 - t1
                    modeTime[b.mode, default: 0] += monotonicSeconds() - t2
                    computedMACs += a.computedMACs + b.computedMACs
                    denseMACs += a.denseMACs + b.denseMACs
                    modes[a.mode, default: 0] += 1
                    modes[b.mode, default: 0] += 1
                    return (r, s)
                }
                let dense: (EfficientNetLite0.Result, Float), result: (EfficientNetLite0.Result, Float)
                if i % 2 == 0 {
                    dense = try runDense()
                    result = try runDelta()
                } else {
                    result = try runDelta()
                    dense = try runDense()
                }
                last = result
                if result.0.top(1).first?.index == dense.0.top(1).first?.index { agree += 1 }
                cosines.append(Self.cosine(result.0.features, dense.0.features))
                nsfwDiff = max(nsfwDiff, abs(result.1 - dense.1))
            }
            // Skipped frames cost nothing: their dense work counts as saved.
            let perFrame = denseMACs / Double(max(frames.count - skipped, 1))
            let saved = 1 - computedMACs / max(perFrame * Double(frames.count), 1)
            print(pad(URL(fileURLWithPath: path).lastPathComponent, 18) + pad("\(frames.count)", 8) + pad("\(skipped)", 9)
                  + pad(String(format: "%.0f", denseTime * 1000), 10) + pad(String(format: "%.0f", deltaTime * 1000), 10)
                  + pad(String(format: "%.0f", selectorTime * 1000), 11)
                  + pad(String(format: "%.2f×", denseTime / max(deltaTime, 1e-9)), 8) + pad(String(format: "%.0f%%", changedTiles / Double(max(frames.count, 1)) * 100), 8) + pad(String(format: "%.1f%%", saved * 100), 12)
                  + pad(String(format: "%.1f%%", Double(agree) / Double(max(frames.count, 1)) * 100), 13)
                  + pad(String(format: "%.4f/%.4f", cosines.reduce(0, +) / Double(max(cosines.count, 1)), cosines.min() ?? 0), 15)
                  + pad(String(format: "%.4f", nsfwDiff), 15)
                  + [DeltaSchedule.Mode.masked, .dense, .plain].map { mode in
                      "\(mode) \(modes[mode] ?? 0)" + ((modes[mode] ?? 0) > 0 ? String(format: " (%.1f ms)", (modeTime[mode] ?? 0) * 1000 / Double(modes[mode] ?? 1)) : "")
                  }.joined(separator: ", "))
        }
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
        }
        return dot / max((na * nb).squareRoot(), 1e-30)
    }

    static func sample(_ name: String) throws -> String {
        try runTool(repositoryFile("Scripts/fetch-sample"), [name]).split(separator: "\n").last.map(String.init) ?? name
    }

    static func decode(_ path: String, fps: Double, limit: Int) throws -> [Frame] {
        let rate = Rational(Int64((fps * 1000).rounded()), 1000)
        let source = VideoSource(url: path, options: SourceOptions(sampling: .perSecond(rate), output: OutputFormat(pixelFormat: .rgb24)))
        var frames: [Frame] = []
        while frames.count < limit, let event = try source.next() {
            if case .frame(let frame) = event { frames.append(frame) }
        }
        return frames
    }
}
