import Foundation
import SightlineCore
import SightlineGraph
import SightlineKernels
import SightlineModels

/// Which tiles of a sampled frame changed since the picture the models last computed, as a
/// pure state machine. Scores are per tile against a reference that is updated only where
/// a tile is recomputed, so a slow drift accumulates until it crosses the threshold (the error
/// stays bounded by the threshold). With threshold 0 a tile changes when any byte of it does
/// (exactly what dense inference would see); above 0 a tile changes when more than
/// `minChangedPixels` of its pixels moved by more than `threshold` luma levels once the frame's
/// global brightness shift is removed (sensor noise and exposure changes do not count).
public struct RegionSelector: Sendable {
    public struct Decision: Sendable, Equatable {
        public var tiles: TileMask
        /// Fraction of tiles above the threshold.
        public var changedFraction: Double
        /// Nothing worth computing: reuse the previous outputs.
        public var skip: Bool
        /// Recompute everything (first frame, every `refreshEvery` frames, a shot change, or
        /// more than `fullAbove` of the tiles changed).
        public var refresh: Bool
        public var reason: String
    }

    public var tileSize: Int
    public var threshold: Double
    public var skipBelow: Double
    public var fullAbove: Double
    public var refreshEvery: Int
    /// With threshold > 0: the fraction of a tile's pixels that must move for it to count.
    public var minChangedPixels: Double
    private var reference: [UInt8] = []
    private var size: (width: Int, height: Int, bpp: Int)?
    private var sinceRefresh = 0
    private var refreshRequested = false

    public init(tileSize: Int = 16, threshold: Double = 12, minChangedPixels: Double = 0.1, skipBelow: Double = 0.005, fullAbove: Double = 0.6, refreshEvery: Int = 20) {
        self.minChangedPixels = minChangedPixels
        self.tileSize = max(1, tileSize)
        self.threshold = max(0, threshold)
        self.skipBelow = skipBelow
        self.fullAbove = fullAbove
        self.refreshEvery = max(1, refreshEvery)
    }

    /// The next frame is recomputed in full (a shot change was reported).
    public mutating func requestRefresh() { refreshRequested = true }

    public mutating func push(_ frame: Frame) -> Decision {
        let bpp = frame.pixelFormat.bytesPerPixel
        let columns = (frame.width + tileSize - 1) / tileSize, rows = (frame.height + tileSize - 1) / tileSize
        let all = TileMask(tileSize: tileSize, columns: columns, rows: rows, bits: [Bool](repeating: true, count: columns * rows))
        guard let size, size.width == frame.width, size.height == frame.height, size.bpp == bpp,
              reference.count == frame.pixels.count, sinceRefresh + 1 < refreshEvery, !refreshRequested else {
            let reason = self.size == nil ? "first frame" : (refreshRequested ? "shot change" : (sinceRefresh + 1 >= refreshEvery ? "periodic refresh" : "new frame size"))
            refresh(frame)
            return Decision(tiles: all, changedFraction: 1, skip: false, refresh: true, reason: reason)
        }
        let scores = tileScores(frame, columns: columns, rows: rows)
        let bits = scores.map { threshold == 0 ? $0 > 0 : $0 > minChangedPixels }
        let tiles = TileMask(tileSize: tileSize, columns: columns, rows: rows, bits: bits)
        let fraction = tiles.fraction
        if fraction > fullAbove {
            refresh(frame)
            return Decision(tiles: all, changedFraction: fraction, skip: false, refresh: true, reason: "most tiles changed")
        }
        if fraction == 0 || fraction < skipBelow {
            // The reference stays: what did change keeps counting until it is large enough.
            return Decision(tiles: TileMask(tileSize: tileSize, columns: columns, rows: rows, bits: [Bool](repeating: false, count: bits.count)),
                            changedFraction: fraction, skip: true, refresh: false, reason: "below threshold")
        }
        sinceRefresh += 1
        copyTiles(frame, tiles: tiles)
        return Decision(tiles: tiles, changedFraction: fraction, skip: false, refresh: false, reason: "changed tiles")
    }

    private mutating func refresh(_ frame: Frame) {
        if reference.count == frame.pixels.count {
            // Copied into the buffer the selector owns: sharing the frame's storage made the
            // next tile update copy the whole frame into fresh memory (page faults included).
            reference.withUnsafeMutableBufferPointer { dst in
                frame.pixels.withUnsafeBufferPointer { src in
                    if let to = dst.baseAddress, let from = src.baseAddress { memcpy(to, from, src.count) }
                }
            }
        } else {
            // A new size: share the frame's storage; the first tile update makes it our own.
            reference = frame.pixels
        }
        size = (frame.width, frame.height, frame.pixelFormat.bytesPerPixel)
        sinceRefresh = 0
        refreshRequested = false
    }

    /// Per tile: with threshold 0, the number of differing bytes; otherwise the fraction of the
    /// tile's pixels (sampled every second row and column) whose luma moved by more than
    /// `threshold` after the frame's global brightness shift is removed — a small moving object
    /// counts, sensor noise and exposure changes do not.
    func tileScores(_ frame: Frame, columns: Int, rows: Int) -> [Double] {
        let bpp = frame.pixelFormat.bytesPerPixel, w = frame.width, h = frame.height
        var scores = [Double](repeating: 0, count: columns * rows)
        frame.pixels.withUnsafeBufferPointer { new in
            reference.withUnsafeBufferPointer { old in
                if threshold == 0 {
                    // Exact: a tile changed when any byte of it did (memcmp per tile row).
                    for y in 0..<h {
                        let row = y * w * bpp, tileRow = (y / tileSize) * columns
                        for column in 0..<columns where scores[tileRow + column] == 0 {
                            let x0 = column * tileSize, x1 = min(w, x0 + tileSize)
                            if memcmp(new.baseAddress! + row + x0 * bpp, old.baseAddress! + row + x0 * bpp, (x1 - x0) * bpp) != 0 {
                                scores[tileRow + column] = 1
                            }
                        }
                    }
                    return
                }
                let channels = frame.pixelFormat == .bgr24 ? (red: 2, green: 1, blue: 0) : (red: 0, green: 1, blue: 2)
                let sw = (w + 1) / 2, sh = (h + 1) / 2
                let differences = UnsafeMutablePointer<Int16>.allocate(capacity: sw * sh)
                let counts = UnsafeMutablePointer<Int32>.allocate(capacity: columns * rows)
                let moved = UnsafeMutablePointer<Int32>.allocate(capacity: columns * rows)
                defer { differences.deallocate(); counts.deallocate(); moved.deallocate() }
                counts.initialize(repeating: 0, count: columns * rows)
                moved.initialize(repeating: 0, count: columns * rows)
                let total = FrameDifference.sampledLuma(new: new.baseAddress!, old: old.baseAddress!, width: w, height: h, bytesPerPixel: bpp,
                                                        channels: channels, into: differences)
                let shift = Int((Double(total) / Double(max(1, sw * sh))).rounded())
                FrameDifference.movedSamples(differences, width: w, height: h, tileSize: tileSize, columns: columns, shift: shift,
                                             limit: Int(threshold), counts: counts, moved: moved)
                for t in scores.indices { scores[t] = Double(moved[t]) / Double(max(counts[t], 1)) }
            }
        }
        return scores
    }

    private mutating func copyTiles(_ frame: Frame, tiles: TileMask) {
        let bpp = frame.pixelFormat.bytesPerPixel, w = frame.width
        guard reference.count == frame.pixels.count else { return }
        // One memcpy per pixel row of each run of neighbouring changed tiles (Array's
        // replaceSubrange per tile row cost ~1 ms a frame at 720p with half the tiles changed).
        reference.withUnsafeMutableBufferPointer { dst in
            frame.pixels.withUnsafeBufferPointer { src in
                guard let to = dst.baseAddress, let from = src.baseAddress else { return }
                for row in 0..<tiles.rows {
                    var column = 0
                    while column < tiles.columns {
                        guard tiles[row, column] else { column += 1; continue }
                        var end = column
                        while end < tiles.columns && tiles[row, end] { end += 1 }
                        let x0 = column * tileSize, x1 = min(w, end * tileSize)
                        for y in (row * tileSize)..<min(frame.height, (row + 1) * tileSize) {
                            let start = (y * w + x0) * bpp
                            memcpy(to + start, from + start, (x1 - x0) * bpp)
                        }
                        column = end
                    }
                }
            }
        }
    }
}

/// `regions`: the sparse region selector. Per sampled frame, a `regions` record (before the
/// frame) with the tile grid of changed tiles against what the models last computed; model
/// nodes with `delta: true` recompute only what those tiles reach, and reuse their previous
/// results for frames marked `skip`. A `shots` record from upstream forces a full refresh.
public final class RegionsNode: NodeProcessor {
    private var selectors: [String: RegionSelector] = [:]
    private var counts: [String: (frames: Int, skipped: Int, tiles: Double)] = [:]
    private let template: RegionSelector
    private let reportEvery: Int

    public static let descriptor = NodeDescriptor(
        name: "regions",
        description: "Sparse region selector: changed tiles per frame against the last computed picture (kind `regions`); frames with nothing changed are marked skip.",
        role: .transform, inputs: .frames, outputs: .any,
        options: [
            OptionSpec("tile", .int, default: .int(16), min: 4, max: 512, help: "tile size in pixels"),
            OptionSpec("threshold", .double, default: .double(12), min: 0, max: 255, help: "luma change of a pixel (after the global brightness shift) that counts; 0: any byte of the tile (exact)"),
            OptionSpec("min_pixels", .double, default: .double(0.1), min: 0, max: 1, help: "fraction of a tile's pixels that must change for the tile to count"),
            OptionSpec("skip_below", .double, default: .double(0.005), min: 0, max: 1, help: "skip the frame (reuse results) when fewer tiles than this fraction changed"),
            OptionSpec("full_above", .double, default: .double(0.6), min: 0, max: 1, help: "recompute everything when more tiles than this fraction changed"),
            OptionSpec("refresh_every", .int, default: .int(20), min: 1, max: 1_000_000, help: "full refresh after this many partial frames"),
            OptionSpec("report_every", .int, default: .int(50), min: 1, max: 1_000_000, help: "post a `regions` status every N frames per source"),
        ],
        contract: NodeContract(produces: [.init(.regions)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(RegionsNode(selector: RegionSelector(
            tileSize: options.int("tile") ?? 16, threshold: options.double("threshold") ?? 12,
            minChangedPixels: options.double("min_pixels") ?? 0.1, skipBelow: options.double("skip_below") ?? 0.005,
            fullAbove: options.double("full_above") ?? 0.6, refreshEvery: options.int("refresh_every") ?? 20), reportEvery: options.int("report_every") ?? 50))
    }

    init(selector: RegionSelector, reportEvery: Int) {
        template = selector
        self.reportEvery = reportEvery
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .frame(let frame):
            var selector = selectors[frame.sourceID] ?? template
            let decision = selector.push(frame)
            selectors[frame.sourceID] = selector
            let regions = ChangedRegions(frameIndex: frame.decodeIndex, tiles: decision.tiles, changedFraction: decision.changedFraction,
                                         skip: decision.skip, refresh: decision.refresh, reason: decision.reason)
            emit(.record(Record(.regions(regions), frame: frame, provenance: [Provenance(name: "regions-tiles", version: "1")])))
            var c = counts[frame.sourceID] ?? (0, 0, 0)
            c.frames += 1
            if decision.skip { c.skipped += 1 }
            c.tiles += regions.computedFraction
            counts[frame.sourceID] = c
            if c.frames % reportEvery == 0 { context.post(status(frame.sourceID, c, context: context)) }
            emit(item)
        case .record(let record):
            // A cut, a fade or an outage changes the picture; the end of a fixed window does not.
            if case .shot(let shot) = record.value, shot.endedBy != .window { selectors[record.sourceID]?.requestRefresh() }
            emit(item)
        case .endOfStream(let eos):
            if let c = counts.removeValue(forKey: eos.sourceID), c.frames % reportEvery != 0 { context.post(status(eos.sourceID, c, context: context)) }
            selectors[eos.sourceID] = nil
        case .status:
            emit(item)
        }
    }

    private func status(_ source: String, _ c: (frames: Int, skipped: Int, tiles: Double), context: any NodeContext) -> StatusEvent {
        StatusEvent(.regions(RegionsSummary(frames: c.frames, skipped: c.skipped, tilesComputedFraction: c.tiles / Double(max(c.frames, 1)))),
                    sourceID: source, wallClock: context.clock.now())
    }
}
