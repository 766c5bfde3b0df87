import Testing
import SightlineCore
import SightlineModels
import SightlineGraph
@testable import SightlineNodes

/// The region selector as a pure state machine: timelines of frames in, decisions out.
@Suite struct RegionSelectorTests {
    static let width = 128, height = 96

    /// A grey background (optionally with noise and a brightness offset) and a bright square.
    static func frame(_ index: Int, square: (x: Int, y: Int)?, noise: Int = 0, brightness: Int = 0) -> Frame {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        var seed = UInt64(index * 7919 + 1)
        for y in 0..<height {
            for x in 0..<width {
                var v = 100 + brightness
                if let s = square, x >= s.x, x < s.x + 16, y >= s.y, y < s.y + 16 { v = 220 + brightness }
                if noise > 0 {
                    seed = seed &* 6364136223846793005 &+ 1442695040888963407
                    v += Int(seed >> 60) % (2 * noise + 1) - noise
                }
                for c in 0..<3 { pixels[(y * width + x) * 3 + c] = UInt8(clamping: v) }
            }
        }
        return Frame(sourceID: "cam", decodeIndex: index, timestamp: Timestamp(pts: Int64(index), timeBase: Rational(1, 10)),
                     seconds: Double(index) / 10, ingestWallClock: 0, isKeyframe: index == 0, width: width, height: height,
                     pixelFormat: .rgb24, pixels: pixels)
    }

    /// Tiles (16 px) a 16×16 square at (x, y) overlaps.
    static func tiles(of s: (x: Int, y: Int)) -> Set<Int> {
        var out = Set<Int>()
        for y in [s.y, s.y + 15] { for x in [s.x, s.x + 15] { out.insert((y / 16) * (width / 16) + x / 16) } }
        return out
    }

    @Test func aMovingSquareChangesExactlyTheTilesItLeavesAndEnters() {
        var selector = RegionSelector(tileSize: 16, threshold: 0, skipBelow: 0, fullAbove: 0.9, refreshEvery: 1000)
        var position = (x: 4, y: 20)
        let first = selector.push(Self.frame(0, square: position))
        #expect(first.refresh && first.reason == "first frame")
        for step in 1...8 {
            let next = (x: 4 + step * 12, y: 20 + step * 5)
            let decision = selector.push(Self.frame(step, square: next))
            let changed = Set(decision.tiles.bits.indices.filter { decision.tiles.bits[$0] })
            #expect(changed == Self.tiles(of: position).union(Self.tiles(of: next)), "step \(step)")
            #expect(!decision.skip && !decision.refresh)
            position = next
        }
    }

    @Test func noiseAndAGlobalBrightnessShiftAreNotChange() {
        var selector = RegionSelector(tileSize: 16, threshold: 12, minChangedPixels: 0.02, skipBelow: 0.001, fullAbove: 0.9, refreshEvery: 1000)
        _ = selector.push(Self.frame(0, square: (40, 40), noise: 3))
        let noisy = selector.push(Self.frame(1, square: (40, 40), noise: 3))
        #expect(noisy.skip && noisy.changedFraction == 0, "sensor noise alone: skip, reuse results")
        let brighter = selector.push(Self.frame(2, square: (40, 40), noise: 3, brightness: 20))
        #expect(brighter.skip, "exposure change alone: skip")
        let moved = selector.push(Self.frame(3, square: (72, 40), noise: 3, brightness: 20))
        let changed = Set(moved.tiles.bits.indices.filter { moved.tiles.bits[$0] })
        #expect(changed == Self.tiles(of: (40, 40)).union(Self.tiles(of: (72, 40))))
    }

    @Test func refreshesFirstPeriodicallyAtShotChangesAndWhenMostTilesChange() {
        var selector = RegionSelector(tileSize: 16, threshold: 0, skipBelow: 0, fullAbove: 0.5, refreshEvery: 3)
        var reasons: [String] = []
        func push(_ f: Frame) { reasons.append(selector.push(f).reason) }
        push(Self.frame(0, square: (0, 0)))         // first frame
        push(Self.frame(1, square: (16, 0)))        // changed tiles
        push(Self.frame(2, square: (32, 0)))        // changed tiles
        push(Self.frame(3, square: (48, 0)))        // periodic refresh (3rd since)
        push(Self.frame(4, square: (48, 0)))        // nothing changed: skip
        selector.requestRefresh()
        push(Self.frame(5, square: (48, 0)))        // shot change
        push(Self.frame(6, square: nil, brightness: 80))  // everything changed
        #expect(reasons == ["first frame", "changed tiles", "changed tiles", "periodic refresh", "below threshold", "shot change", "most tiles changed"])
    }

    @Test func tileMasksRoundTripThroughHex() {
        let bits = (0..<77).map { $0 % 3 == 0 || $0 == 76 }
        let mask = TileMask(tileSize: 16, columns: 11, rows: 7, bits: bits)
        #expect(TileMask(hex: mask.hex, tileSize: 16, columns: 11, rows: 7) == mask)
        #expect(TileMask(hex: "zz", tileSize: 16, columns: 11, rows: 7) == nil)
    }

    @Test func changedTilesMapToTheModelInputConservatively() {
        // A 640×480 frame, one changed tile at (320, 240): model input pixels that read it.
        var bits = [Bool](repeating: false, count: 40 * 30)
        bits[15 * 40 + 20] = true
        let tiles = TileMask(tileSize: 16, columns: 40, rows: 30, bits: bits)
        let preprocessing = ImagePreprocessing(resizeTo: 256, crop: 224, order: .rgb, layout: .nchw, mean: [0, 0, 0], scale: [1, 1, 1])
        let mask = preprocessing.changedInputMask(frameWidth: 640, frameHeight: 480, tiles: tiles)
        // Brute force: input pixel (u, v) reads source pixels floor(x), floor(x)+1 around its centre.
        for v in 0..<224 {
            for u in 0..<224 {
                let x = (Double(u + 16) + 0.5) * 640 / 256 - 0.5, y = (Double(v + 16) + 0.5) * 480 / 256 - 0.5
                let xs = [Int(x.rounded(.down)), Int(x.rounded(.down)) + 1].map { min(max($0, 0), 639) }
                let ys = [Int(y.rounded(.down)), Int(y.rounded(.down)) + 1].map { min(max($0, 0), 479) }
                let reads = ys.contains { (240..<256).contains($0) } && xs.contains { (320..<336).contains($0) }
                #expect(mask.bits[v * 224 + u] == reads, "(\(u), \(v))")
            }
        }
    }
}

/// The regions node refreshes after a cut (the picture changed), not after a fixed window ends
/// (the live pipeline's 4 s caption windows would otherwise recompute every 4 s).
@Suite struct RegionsNodeTests {
    @Test func aCutRefreshesAndAWindowDoesNot() throws {
        let node = RegionsNode(selector: RegionSelector(tileSize: 16, threshold: 0, refreshEvery: 1000), reportEvery: 1000)
        let context = try TestContext()
        var decisions: [String] = []
        func push(_ item: Item) throws {
            try node.process(item, context: context) { out in
                if case .record(let r) = out, case .regions(let regions) = r.value { decisions.append(regions.skip ? "skip" : (regions.refresh ? "refresh" : "partial")) }
            }
        }
        try push(.frame(RegionSelectorTests.frame(0, square: nil)))
        try push(.frame(RegionSelectorTests.frame(1, square: nil)))
        try push(.record(TestRecords.shot(0, from: 0, to: 0.1, endedBy: .window)))
        try push(.frame(RegionSelectorTests.frame(2, square: nil)))
        try push(.record(TestRecords.shot(1, from: 0.1, to: 0.2, endedBy: .cut)))
        try push(.frame(RegionSelectorTests.frame(3, square: nil)))
        #expect(decisions == ["refresh", "skip", "skip", "refresh"])
    }
}
