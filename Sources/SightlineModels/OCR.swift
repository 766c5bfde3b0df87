import Foundation
import SightlineCore
import SightlineInference
import SightlineKernels

/// A line of text found in an image: its box (four corners, clockwise from top-left, in image
/// pixels), the text, and the confidences of detection and recognition.
public struct TextLine: Sendable, Equatable {
    public var corners: [SIMD2<Float>]
    public var text: String
    public var confidence: Float
    public var detectionScore: Float
    /// Carried over from the previous frame's reading (same box, same pixels).
    public var kept = false
}

/// PP-OCRv4 (the RapidOCR packaging): DB text detection → boxes → optional 180° angle
/// classification → CRNN/SVTR recognition with CTC greedy decoding. Pre/post-processing follows
/// the package's config.yaml — detection on BGR with (x/255 − 0.5)/0.5, sides rounded to a
/// multiple of 32, DB threshold 0.3, box score ≥ 0.5, unclip ratio 1.6, dilation on; recognition
/// at height 48, (x/255 − 0.5)/0.5, charset from the model's metadata plus a space — except the
/// detection size: the package scales the shorter side up to 736, which split lines into words
/// on small images in our tests (26/28 lines exact → 13/28), so we keep PaddleOCR's default of
/// no upscaling with the longer side capped at 960 (`minSide` / `maxSide` change it).
public final class TextRecognizer: @unchecked Sendable {
    public let detector: InferenceModel
    public let recognizer: InferenceModel
    public let classifier: InferenceModel
    public let characters: [String]
    public var useAngleClassifier = true
    /// Shorter side scaled up to this (0: never upscale) and longer side capped at `maxSide`.
    public var minSide = 0
    public var maxSide = 960
    public var detectionMean: [Float] = [0.5, 0.5, 0.5]
    public var detectionStd: [Float] = [0.5, 0.5, 0.5]
    public var binaryThreshold: Float = 0.3
    public var boxThreshold: Float = 0.5
    public var unclipRatio: Float = 1.6
    /// Look for text first at this fraction of the detector's input size, and skip the
    /// full-size run when that map holds no text (`TextProbePolicy` says when a source probes;
    /// 0: never). Off here; the `ocr` node and `sightline ocr` turn it on at 2/3.
    public var probeScale: Float = 0
    /// A probe map whose every probability stays below this holds no text. Text gives values
    /// near 1 and text-free frames about 1e-5 (measured), so the bar sits far from both.
    public var probeThreshold: Float = 0.01
    /// The probe's scale where the `ocr` node and `sightline ocr` use one: 640 px for 720p.
    public static let defaultProbeScale = 0.67
    /// Larger probes cost nearly a full run (`probeMaxShare`).
    public static let largestProbeScale = 0.75
    /// With a probe: run at full size at least this often (seconds of media time) however
    /// empty the probes, and on a source's first frame (`TextProbePolicy.fullEvery`).
    public var probeFullEvery = defaultProbeFullEvery
    /// `probeFullEvery` where the `ocr` node and `sightline ocr` use a probe.
    public static let defaultProbeFullEvery = 5.0
    /// The probe runs only when its input is at most this share of the full input's pixels.
    static let probeMaxShare = 0.6

    public init(store: ModelStore = ModelStore(), threads: Int = 1) throws {
        let m = ModelZoo.ppOCR
        // The detector plans once per frame size; recognition plans per line width and keeps its graph.
        detector = try InferenceModel.loadONNX(path: try store.verify(m), threads: threads, reloadable: true)
        let recGraph = try OnnxLoader.load(path: try store.verify(m, companion: m.companions[0]))
        recognizer = try InferenceModel(graph: recGraph, threads: threads)
        classifier = try InferenceModel.loadONNX(path: try store.verify(m, companion: m.companions[1]), threads: threads)
        guard let charset = recGraph.metadata["character"], !charset.isEmpty else {
            throw ModelError.missing("the recogniser's 'character' metadata (its charset)")
        }
        characters = charset.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) + [" "]
    }

    /// All text lines in a frame, top to bottom, left to right.
    public func read(_ frame: Frame) throws -> [TextLine] {
        var memory: TextMemory? = nil
        return try read(frame, changed: nil, memory: &memory)
    }

    /// What one source's last reading saw: the detector's probability map and every box's
    /// reading, so the next frame of the source can be read only where it changed.
    public struct TextMemory: Sendable {
        var frameWidth: Int
        var frameHeight: Int
        var width: Int
        var height: Int
        var probability: [Float]
        /// The whole frame's global average pools (the detector's squeeze-and-excitation).
        var pools: [String: Tensor]
        var readings: [Reading]
        /// Whether the next frame probes first.
        var probe = TextProbePolicy()
        /// Where the probe's alarms were refuted by the full-size detector.
        var falseAlarms = KnownFalseAlarms()
    }

    struct Reading: Sendable {
        var box: Box
        var text: String
        var confidence: Float
        /// The line's pixels as read (upright, BGR, rounded), kept to tell whether they changed.
        var pixels: [UInt8]
        var kept = false

        /// The published line (nil: nothing was read in the box).
        var line: TextLine? {
            text.isEmpty ? nil : TextLine(corners: box.corners, text: text, confidence: confidence, detectionScore: box.score, kept: kept)
        }
    }

    /// Keep the detector's map (2 MB at 960×544) in a source's memory, so a later frame with a
    /// tile mask can detect only in windows around the change; off, a mask only decides which
    /// lines are read again.
    public var detectOnlyWhereChanged = false

    /// With a tile mask: skip the full-size run where the probe's alarm lies only on tiles
    /// where it was refuted before and which have not changed since (`KnownFalseAlarms`).
    public var rememberFalseAlarms = true

    /// Keep a line's reading when the next frame (`read(_:changed:memory:)`) has the same box
    /// with the same pixels, instead of recognising it again.
    public var keepUnchangedLines = true

    /// What the last `read(_:changed:memory:)` did: the share of the detector's input it ran
    /// (1: the whole frame), how many lines it recognised or kept, and whether a probe ran
    /// (nil: no probe; true: it found no text, so the full-size detector did not run).
    public private(set) var lastWork = (detected: 1.0, recognised: 0, kept: 0, probedOnly: Bool?.none)

    /// The frame's text lines, reading again only what changed since the frame `memory` holds.
    /// With `changed` (the tiles that changed since then) and `detectOnlyWhereChanged`, the
    /// detector runs again only in windows around them (`windowPlanner`), and its
    /// probabilities elsewhere are the last frame's; otherwise it runs on the whole frame. A
    /// line whose box is the same as before, touches no changed tile and whose pixels are the
    /// same (`keepUnchangedLines`) keeps its reading. With a probe, an alarm the full-size run
    /// refuted before on tiles unchanged since needs no full-size run (`rememberFalseAlarms`).
    /// `memory` is replaced with this frame's.
    public func read(_ frame: Frame, changed: TileMask?, memory: inout TextMemory?) throws -> [TextLine] {
        let bgr = ImagePreprocessing.packedPixels(frame, order: .bgr)
        let scale = detectionScale(width: frame.width, height: frame.height)
        let (dw, dh) = Self.detectionSize(width: frame.width, height: frame.height, scale: scale)
        let last = memory.flatMap { m in m.frameWidth == frame.width && m.frameHeight == frame.height && m.width == dw && m.height == dh ? m : nil }
        var probePolicy = memory?.probe ?? TextProbePolicy(fullEvery: probeFullEvery)
        probePolicy.fullEvery = probeFullEvery
        lastWork.probedOnly = nil
        var falseAlarms = memory?.falseAlarms ?? KnownFalseAlarms()
        falseAlarms.forget(changed: rememberFalseAlarms ? changed : nil)
        // The probe's alarm, where it is new and a mask gives its tiles.
        var alarm: TileMask?
        // The probe stands aside where windows need the full map of every frame.
        if probeScale > 0, !detectOnlyWhereChanged {
            let (pw, ph) = Self.detectionSize(width: frame.width, height: frame.height, scale: scale * probeScale)
            if Double(pw * ph) <= Self.probeMaxShare * Double(dw * dh), probePolicy.probeNext(at: frame.seconds) {
                let map = try detect(detectionInput(bgr, width: frame.width, height: frame.height, size: (pw, ph)), width: pw, height: ph)
                var foundText = map.contains { $0 >= probeThreshold }
                if foundText, rememberFalseAlarms, let tileSize = changed?.tileSize ?? falseAlarms.tileSize,
                   let tiles = Self.alarmTiles(map, width: pw, height: ph, frameWidth: frame.width, frameHeight: frame.height,
                                               threshold: probeThreshold, tileSize: tileSize) {
                    if falseAlarms.explains(tiles) { foundText = false } else { alarm = tiles }
                }
                lastWork.probedOnly = !foundText
                if !foundText {
                    probePolicy.record(probeFoundText: false, boxes: nil, at: frame.seconds)
                    lastWork.detected = Double(pw * ph) / Double(dw * dh)
                    (lastWork.recognised, lastWork.kept) = (0, 0)
                    memory = TextMemory(frameWidth: frame.width, frameHeight: frame.height, width: dw, height: dh,
                                        probability: [], pools: [:], readings: [], probe: probePolicy, falseAlarms: falseAlarms)
                    return []
                }
            }
        }
        let input = detectionInput(bgr, width: frame.width, height: frame.height, size: (dw, dh))
        var probability: [Float]
        var pools: [String: Tensor]
        if detectOnlyWhereChanged, let changed, let last, last.probability.count == dw * dh,
           let windows = windowPlanner.windows(changed: changed, frameWidth: frame.width, frameHeight: frame.height, width: dw, height: dh) {
            probability = last.probability
            pools = last.pools
            try detect(input, width: dw, height: dh, windows: windows, pools: pools, into: &probability)
            lastWork.detected = Double(windows.reduce(0) { $0 + $1.width * $1.height }) / Double(dw * dh)
        } else if detectOnlyWhereChanged {
            (probability, pools) = try detectKeepingPools(input, width: dw, height: dh)
            lastWork.detected = 1
        } else {
            // Only windows read the pools: a plain run otherwise.
            (probability, pools) = (try detect(input, width: dw, height: dh), [:])
            lastWork.detected = 1
        }
        let boxes = boxes(probability, width: dw, height: dh, frameWidth: frame.width, frameHeight: frame.height)
        let crops = boxes.map { Self.crop(bgr, width: frame.width, height: frame.height, box: $0.corners) }
        var readings = [Reading?](repeating: nil, count: boxes.count)
        if keepUnchangedLines, let previous = last?.readings, !previous.isEmpty {
            for (i, box) in boxes.enumerated() {
                if let changed, Self.touches(box, changed) { continue }
                guard let before = previous.first(where: { Self.sameBox($0.box, box) }),
                      Self.samePixels(before.pixels, crops[i]) else { continue }
                readings[i] = Reading(box: box, text: before.text, confidence: before.confidence, pixels: before.pixels, kept: true)
            }
        }
        let toRead = boxes.indices.filter { readings[$0] == nil }
        if !toRead.isEmpty {
            for (i, text) in zip(toRead, try recognizeTurning(toRead.map { crops[$0] })) {
                readings[i] = Reading(box: boxes[i], text: text.text, confidence: text.confidence,
                                      pixels: keepUnchangedLines ? crops[i].rounded : [])
            }
        }
        lastWork.recognised = toRead.count
        lastWork.kept = boxes.count - toRead.count
        let all = readings.compactMap { $0 }
        // The alarm's tiles are refuted except where the detector found a box (text or junk).
        if let alarm { falseAlarms.remember(alarm) }
        if !boxes.isEmpty, let tileSize = changed?.tileSize ?? falseAlarms.tileSize {
            falseAlarms.forget(changed: Self.boxTiles(boxes, frameWidth: frame.width, frameHeight: frame.height, tileSize: tileSize))
        }
        probePolicy.record(probeFoundText: lastWork.probedOnly.map { !$0 }, boxes: boxes.count,
                           read: all.filter { !$0.text.isEmpty && $0.confidence >= TextProbePolicy.readConfidence }.count, at: frame.seconds,
                           remembered: boxes.isEmpty && alarm != nil)
        memory = TextMemory(frameWidth: frame.width, frameHeight: frame.height, width: dw, height: dh,
                            probability: detectOnlyWhereChanged ? probability : [], pools: pools, readings: all, probe: probePolicy,
                            falseAlarms: falseAlarms)
        return all.compactMap(\.line)
    }

    /// Crops' text, each turned the right way up first (with `useAngleClassifier`).
    func recognizeTurning(_ crops: [Crop]) throws -> [(text: String, confidence: Float)] {
        var upright = crops
        if useAngleClassifier {
            let flips = try classifyAngles(upright)
            for (i, flip) in flips.enumerated() where flip { upright[i] = upright[i].rotated180() }
        }
        return try recognize(upright)
    }

    /// The lines `memory` holds, at their boxes, with only those whose pixels changed read
    /// again; the detector does not run. For a frame a motion gate calls unchanged but where a
    /// known line changed (a clock's digits). Without a usable memory, the whole frame is read.
    public func rereadChangedLines(_ frame: Frame, memory: inout TextMemory?) throws -> [TextLine] {
        guard var last = memory, last.frameWidth == frame.width, last.frameHeight == frame.height, keepUnchangedLines else {
            return try read(frame, changed: nil, memory: &memory)
        }
        let bgr = ImagePreprocessing.packedPixels(frame, order: .bgr)
        let crops = last.readings.map { Self.crop(bgr, width: frame.width, height: frame.height, box: $0.box.corners) }
        let toRead = last.readings.indices.filter { !Self.samePixels(last.readings[$0].pixels, crops[$0]) }
        for i in last.readings.indices { last.readings[i].kept = true }
        for (i, text) in zip(toRead, try recognizeTurning(toRead.map { crops[$0] })) {
            last.readings[i] = Reading(box: last.readings[i].box, text: text.text, confidence: text.confidence, pixels: crops[i].rounded)
        }
        // The map no longer matches these pixels: the next windowed read starts from a whole frame.
        last.probability = []
        lastWork = (detected: 0, recognised: toRead.count, kept: last.readings.count - toRead.count, probedOnly: nil)
        memory = last
        return last.readings.compactMap(\.line)
    }

    /// Whether any line `memory` read (text or not) shows other pixels in `frame`: a clock's
    /// digits or a caption that changed too little for a motion gate to notice. Lines read
    /// without their pixels kept (`keepUnchangedLines` off) cannot tell, and do not count.
    public func linesChanged(_ frame: Frame, since memory: TextMemory?) -> Bool {
        guard let memory, memory.frameWidth == frame.width, memory.frameHeight == frame.height else { return false }
        let known = memory.readings.filter { !$0.pixels.isEmpty }
        guard !known.isEmpty else { return false }
        let bgr = ImagePreprocessing.packedPixels(frame, order: .bgr)
        return known.contains { !Self.samePixels($0.pixels, Self.crop(bgr, width: frame.width, height: frame.height, box: $0.box.corners)) }
    }

    /// The same box: every corner within a pixel.
    static func sameBox(_ a: Box, _ b: Box) -> Bool {
        a.corners.count == b.corners.count && zip(a.corners, b.corners).allSatisfy { simd_length($0 - $1) <= 1 }
    }

    /// The same pixels as before, up to compression noise: the same size, no pixel more than 8
    /// levels away and a mean difference of at most 0.5. Measured on a static news ticker over
    /// moving H.264 video, looser bounds (40 and 2) kept readings the whole-frame reader would
    /// have changed: recognition flips on a word space ("BREAKING NEWS" / "BREAKINGNEWS") with
    /// that much codec noise, and this keeps 59 of 60 frames' text identical to it.
    static func samePixels(_ before: [UInt8], _ now: Crop) -> Bool {
        guard before.count == now.pixels.count, !before.isEmpty else { return false }
        var total: Float = 0
        for (a, b) in zip(before, now.pixels) {
            let d = abs(Float(a) - b)
            if d > 8 { return false }
            total += d
        }
        return total / Float(before.count) <= 0.5
    }

    /// Windows for reading only where a frame changed (see `read(_:changed:memory:)`).
    public var windowPlanner = DetectionWindowPlanner()

    /// Whether a box (frame pixels, grown by two pixels) overlaps a changed tile.
    static func touches(_ box: Box, _ changed: TileMask) -> Bool {
        guard let (rows, columns) = tiles(of: box, in: changed) else { return true }
        for r in rows { for c in columns where changed[r, c] { return true } }
        return false
    }

    /// The tiles of a frame's grid (`tileSize` pixels) that `boxes` touch, each grown by two pixels.
    static func boxTiles(_ boxes: [Box], frameWidth: Int, frameHeight: Int, tileSize: Int) -> TileMask {
        let t = max(1, tileSize)
        let columns = (frameWidth + t - 1) / t, rows = (frameHeight + t - 1) / t
        var mask = TileMask(tileSize: t, columns: columns, rows: rows, bits: [Bool](repeating: false, count: columns * rows))
        for box in boxes {
            guard let (rs, cs) = tiles(of: box, in: mask) else { continue }
            for r in rs { for c in cs { mask.bits[r * columns + c] = true } }
        }
        return mask
    }

    /// The rows and columns of `grid`'s tiles under a box grown by two pixels (nil: no corners,
    /// or wholly outside the grid).
    static func tiles(of box: Box, in grid: TileMask) -> (rows: ClosedRange<Int>, columns: ClosedRange<Int>)? {
        let xs = box.corners.map(\.x), ys = box.corners.map(\.y)
        guard let minX = xs.min(), let maxX = xs.max(), let minY = ys.min(), let maxY = ys.max(), grid.tileSize > 0 else { return nil }
        let c0 = max(0, Int(minX - 2) / grid.tileSize), c1 = min(grid.columns - 1, Int(maxX + 2) / grid.tileSize)
        let r0 = max(0, Int(minY - 2) / grid.tileSize), r1 = min(grid.rows - 1, Int(maxY + 2) / grid.tileSize)
        guard c0 <= c1, r0 <= r1 else { return nil }
        return (r0...r1, c0...c1)
    }

    // MARK: - Detection

    struct Box: Sendable { var corners: [SIMD2<Float>]; var score: Float }

    /// The detector's scale for a frame: per `minSide` and `maxSide`.
    func detectionScale(width: Int, height: Int) -> Float {
        let scale = minSide > 0 && min(width, height) < minSide ? Float(minSide) / Float(min(width, height)) : 1
        return min(scale, Float(maxSide) / Float(max(width, height)))
    }

    /// The frame's tiles (the regions node's grid: `tileSize` pixels) under a probe map's values
    /// of at least `threshold`; each map value covers the frame's pixels it was resized from.
    static func alarmTiles(_ map: [Float], width pw: Int, height ph: Int, frameWidth: Int, frameHeight: Int,
                           threshold: Float, tileSize t: Int) -> TileMask? {
        guard t > 0, pw > 0, ph > 0, map.count == pw * ph, frameWidth > 0, frameHeight > 0 else { return nil }
        let grid = (columns: (frameWidth + t - 1) / t, rows: (frameHeight + t - 1) / t)
        var bits = [Bool](repeating: false, count: grid.columns * grid.rows)
        for y in 0..<ph {
            let r0 = y * frameHeight / ph / t, r1 = max(y * frameHeight / ph, ((y + 1) * frameHeight - 1) / ph) / t
            for x in 0..<pw where map[y * pw + x] >= threshold {
                let c0 = x * frameWidth / pw / t, c1 = max(x * frameWidth / pw, ((x + 1) * frameWidth - 1) / pw) / t
                for r in min(r0, grid.rows - 1)...min(r1, grid.rows - 1) {
                    for c in min(c0, grid.columns - 1)...min(c1, grid.columns - 1) { bits[r * grid.columns + c] = true }
                }
            }
        }
        return TileMask(tileSize: t, columns: grid.columns, rows: grid.rows, bits: bits)
    }

    /// The detector's input size at a scale: each side rounded to a multiple of 32.
    static func detectionSize(width: Int, height: Int, scale: Float) -> (width: Int, height: Int) {
        (max(32, Int((Float(Int(Float(width) * scale)) / 32).rounded()) * 32),
         max(32, Int((Float(Int(Float(height) * scale)) / 32).rounded()) * 32))
    }

    /// The detector's input (NCHW, normalised) and its size: sides scaled per `minSide` /
    /// `maxSide` and rounded to a multiple of 32.
    func detectionInput(_ bgr: [UInt8], width: Int, height: Int) -> (input: [Float], width: Int, height: Int) {
        let (dw, dh) = Self.detectionSize(width: width, height: height, scale: detectionScale(width: width, height: height))
        return (detectionInput(bgr, width: width, height: height, size: (dw, dh)), dw, dh)
    }

    /// The detector's input (NCHW, normalised) resized to `size`.
    func detectionInput(_ bgr: [UInt8], width: Int, height: Int, size: (width: Int, height: Int)) -> [Float] {
        let (dw, dh) = size
        var resized = [Float](repeating: 0, count: dw * dh * 3)
        bgr.withUnsafeBufferPointer { src in
            resized.withUnsafeMutableBufferPointer { resizeBilinear(src.baseAddress!, width: width, height: height, channels: 3, toWidth: dw, toHeight: dh, output: $0.baseAddress!) }
        }
        var input = [Float](repeating: 0, count: 3 * dh * dw)
        for p in 0..<(dw * dh) {
            for c in 0..<3 { input[c * dw * dh + p] = (resized[p * 3 + c] / 255 - detectionMean[c]) / detectionStd[c] }
        }
        return input
    }

    /// The whole frame's text probability map.
    func detect(_ input: [Float], width dw: Int, height dh: Int) throws -> [Float] {
        guard let probability = try detector.run(Tensor(shape: [1, 3, dh, dw], data: input)).values.first,
              probability.data.count == dw * dh else {
            throw ModelError.missing("detector output")
        }
        return probability.data
    }

    /// The whole frame's map and its global average pools.
    func detectKeepingPools(_ input: [Float], width dw: Int, height dh: Int) throws -> ([Float], [String: Tensor]) {
        let shape = [1, 3, dh, dw]
        let names = Set(try detector.outputs(ofOperator: "GlobalAveragePool", shape: shape))
        let (outputs, pools) = try detector.run(Tensor(shape: shape, data: input), given: [:], keeping: names)
        guard let probability = outputs.values.first, probability.data.count == dw * dh else { throw ModelError.missing("detector output") }
        return (probability.data, pools)
    }

    /// The map again inside each window's `keep` rectangle. The windows see the whole frame's
    /// global pools (`pools`), so away from a change they give the whole frame's probabilities.
    func detect(_ input: [Float], width dw: Int, height dh: Int, windows: [DetectionWindow], pools: [String: Tensor], into probability: inout [Float]) throws {
        for window in windows {
            let (w, h) = (window.width, window.height)
            guard window.x >= 0, window.y >= 0, window.x + w <= dw, window.y + h <= dh else { throw ModelError.shapeMismatch("detection window outside the input") }
            var part = [Float](repeating: 0, count: 3 * w * h)
            for c in 0..<3 {
                for y in 0..<h {
                    let from = c * dw * dh + (window.y + y) * dw + window.x
                    part.withUnsafeMutableBufferPointer { out in
                        input.withUnsafeBufferPointer { src in
                            (out.baseAddress! + (c * h + y) * w).update(from: src.baseAddress! + from, count: w)
                        }
                    }
                }
            }
            guard let out = try detector.run(Tensor(shape: [1, 3, h, w], data: part), given: pools, keeping: []).outputs.values.first,
                  out.data.count == w * h else {
                throw ModelError.missing("detector output")
            }
            for y in window.keep.y0..<window.keep.y1 {
                for x in window.keep.x0..<window.keep.x1 {
                    probability[y * dw + x] = out.data[(y - window.y) * w + (x - window.x)]
                }
            }
        }
    }

    /// Boxes from a probability map, in frame pixels, top to bottom, left to right.
    func boxes(_ probability: [Float], width dw: Int, height dh: Int, frameWidth width: Int, frameHeight height: Int) -> [Box] {
        let boxes = DBPostProcess.boxes(probability, width: dw, height: dh, threshold: binaryThreshold,
                                        boxThreshold: boxThreshold, unclipRatio: unclipRatio)
        let sx = Float(width) / Float(dw), sy = Float(height) / Float(dh)
        return boxes.map { b in
            Box(corners: b.corners.map { SIMD2(min(max($0.x * sx, 0), Float(width - 1)), min(max($0.y * sy, 0), Float(height - 1))) }, score: b.score)
        }.sorted { a, b in
            abs(a.corners[0].y - b.corners[0].y) < 10 ? a.corners[0].x < b.corners[0].x : a.corners[0].y < b.corners[0].y
        }
    }

    // MARK: - Angle classification and recognition

    func classifyAngles(_ crops: [Crop]) throws -> [Bool] {
        let (h, w) = (48, 192)
        var flips: [Bool] = []
        for crop in crops {
            let input = crop.normalizedTensor(height: h, width: w, maxWidth: w)
            guard let out = try classifier.run(input).values.first else { throw ModelError.missing("classifier output") }
            flips.append(out.data.count >= 2 && out.data[1] > out.data[0] && out.data[1] > 0.9)
        }
        return flips
    }

    func recognize(_ crops: [Crop]) throws -> [(text: String, confidence: Float)] {
        var results: [(String, Float)] = []
        for crop in crops {
            // Widths round up to a multiple of 64 (zero padding on the right, as PaddleOCR pads
            // a batch), so a long run builds a handful of plans instead of one per line width.
            let natural = max(320, Int((48 * Float(crop.width) / Float(max(crop.height, 1))).rounded(.up)))
            let width = (natural + 63) / 64 * 64
            let input = crop.normalizedTensor(height: 48, width: width, maxWidth: width)
            guard let out = try recognizer.run(input).values.first else { throw ModelError.missing("recogniser output") }
            results.append(CTCDecoder.greedy(out.data, steps: out.shape[1], classes: out.shape[2], characters: characters))
        }
        return results
    }

    // MARK: - Pixels

    /// The box's content sampled into an upright rectangle (bilinear), BGR.
    static func crop(_ bgr: [UInt8], width: Int, height: Int, box c: [SIMD2<Float>]) -> Crop {
        let w = max(1, Int(max(simd_length(c[1] - c[0]), simd_length(c[2] - c[3])).rounded()))
        let h = max(1, Int(max(simd_length(c[3] - c[0]), simd_length(c[2] - c[1])).rounded()))
        var pixels = [Float](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            let v = (Float(y) + 0.5) / Float(h)
            let left = c[0] + (c[3] - c[0]) * v, right = c[1] + (c[2] - c[1]) * v
            for x in 0..<w {
                let u = (Float(x) + 0.5) / Float(w)
                let p = left + (right - left) * u - 0.5
                let x0 = min(max(Int(p.x.rounded(.down)), 0), width - 1), y0 = min(max(Int(p.y.rounded(.down)), 0), height - 1)
                let x1 = min(x0 + 1, width - 1), y1 = min(y0 + 1, height - 1)
                let fx = min(max(p.x - Float(x0), 0), 1), fy = min(max(p.y - Float(y0), 0), 1)
                for ch in 0..<3 {
                    let a = Float(bgr[(y0 * width + x0) * 3 + ch]), b = Float(bgr[(y0 * width + x1) * 3 + ch])
                    let d = Float(bgr[(y1 * width + x0) * 3 + ch]), e = Float(bgr[(y1 * width + x1) * 3 + ch])
                    let top = a + (b - a) * fx, bottom = d + (e - d) * fx
                    pixels[(y * w + x) * 3 + ch] = top + (bottom - top) * fy
                }
            }
        }
        return Crop(width: w, height: h, pixels: pixels)
    }
}

/// An upright text crop (float BGR, H×W×3).
struct Crop {
    var width: Int
    var height: Int
    var pixels: [Float]

    /// The pixels rounded to bytes.
    var rounded: [UInt8] { pixels.map { UInt8(min(max($0.rounded(), 0), 255)) } }

    func rotated180() -> Crop {
        var out = pixels
        let n = width * height
        for p in 0..<n { for c in 0..<3 { out[p * 3 + c] = pixels[(n - 1 - p) * 3 + c] } }
        return Crop(width: width, height: height, pixels: out)
    }

    /// Resized to `height` keeping aspect (at most `maxWidth` wide), (x/255 − 0.5)/0.5, NCHW,
    /// padded with zeros on the right to `width`.
    func normalizedTensor(height oh: Int, width ow: Int, maxWidth: Int) -> Tensor {
        let rw = min(maxWidth, max(1, Int((Float(oh) * Float(width) / Float(max(height, 1))).rounded(.up))))
        var data = [Float](repeating: 0, count: 3 * oh * ow)
        let sx = Float(width) / Float(rw), sy = Float(height) / Float(oh)
        for y in 0..<oh {
            let fy = max(0, (Float(y) + 0.5) * sy - 0.5)
            let y0 = min(Int(fy), height - 1), y1 = min(y0 + 1, height - 1), wy = fy - Float(y0)
            for x in 0..<min(rw, ow) {
                let fx = max(0, (Float(x) + 0.5) * sx - 0.5)
                let x0 = min(Int(fx), width - 1), x1 = min(x0 + 1, width - 1), wx = fx - Float(x0)
                for c in 0..<3 {
                    let a = pixels[(y0 * width + x0) * 3 + c], b = pixels[(y0 * width + x1) * 3 + c]
                    let d = pixels[(y1 * width + x0) * 3 + c], e = pixels[(y1 * width + x1) * 3 + c]
                    let top = a + (b - a) * wx, bottom = d + (e - d) * wx
                    data[(c * oh + y) * ow + x] = ((top + (bottom - top) * wy) / 255 - 0.5) / 0.5
                }
            }
        }
        return Tensor(shape: [1, 3, oh, ow], data: data)
    }
}

/// CTC greedy decoding: the best class per time step, repeats collapsed, blanks (class 0)
/// dropped; class i > 0 is characters[i − 1]. Confidence is the mean probability of the kept steps.
public enum CTCDecoder {
    public static func greedy(_ probabilities: [Float], steps: Int, classes: Int, characters: [String]) -> (text: String, confidence: Float) {
        var text = ""
        var scores: [Float] = []
        var previous = -1
        for t in 0..<steps {
            var best = 0
            var bestScore = -Float.infinity
            let row = t * classes
            for c in 0..<classes where probabilities[row + c] > bestScore {
                bestScore = probabilities[row + c]
                best = c
            }
            if best != 0 && best != previous && best - 1 < characters.count {
                text += characters[best - 1]
                scores.append(bestScore)
            }
            previous = best
        }
        return (text, scores.isEmpty ? 0 : scores.reduce(0, +) / Float(scores.count))
    }
}

/// DB (differentiable binarisation) post-processing: threshold the probability map, dilate,
/// take connected regions, fit each with its minimum-area rectangle, score it by the mean
/// probability inside, and grow it by area·ratio/perimeter (the "unclip").
public enum DBPostProcess {
    public struct Detection { public var corners: [SIMD2<Float>]; public var score: Float }

    public static func boxes(_ prob: [Float], width w: Int, height h: Int, threshold: Float, boxThreshold: Float, unclipRatio: Float) -> [Detection] {
        var mask = [Bool](repeating: false, count: w * h)
        for i in 0..<(w * h) where prob[i] > threshold { mask[i] = true }
        // 2×2 dilation, as PaddleOCR's use_dilation.
        var dilated = mask
        for y in 0..<h { for x in 0..<w where mask[y * w + x] {
            if x + 1 < w { dilated[y * w + x + 1] = true }
            if y + 1 < h { dilated[(y + 1) * w + x] = true }
            if x + 1 < w && y + 1 < h { dilated[(y + 1) * w + x + 1] = true }
        } }
        var label = [Int32](repeating: 0, count: w * h)
        var detections: [Detection] = []
        var next: Int32 = 0
        for start in 0..<(w * h) where dilated[start] && label[start] == 0 {
            next += 1
            var stack = [start]
            label[start] = next
            var points: [SIMD2<Float>] = []
            while let p = stack.popLast() {
                let x = p % w, y = p / w
                var boundary = false
                for (dx, dy) in [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, -1), (-1, 1), (1, 1)] {
                    let nx = x + dx, ny = y + dy
                    guard nx >= 0, ny >= 0, nx < w, ny < h else { boundary = true; continue }
                    let q = ny * w + nx
                    if !dilated[q] { boundary = true; continue }
                    if label[q] == 0 { label[q] = next; stack.append(q) }
                }
                if boundary {
                    // Pixel corners, so a one-pixel-wide region still has an area.
                    let fx = Float(x), fy = Float(y)
                    points += [SIMD2(fx, fy), SIMD2(fx + 1, fy), SIMD2(fx, fy + 1), SIMD2(fx + 1, fy + 1)]
                }
            }
            if points.count < 16 { continue }
            let rect = MinAreaRect(points: convexHull(points))
            if min(rect.width, rect.height) < 3 { continue }
            let score = meanInside(prob, width: w, height: h, corners: rect.corners)
            if score < boxThreshold { continue }
            let area = rect.width * rect.height, perimeter = 2 * (rect.width + rect.height)
            let grown = rect.grown(by: area * unclipRatio / perimeter)
            if min(grown.width, grown.height) < 5 { continue }
            detections.append(Detection(corners: grown.corners, score: score))
        }
        return detections
    }

    /// Mean probability over the pixels whose centres lie inside the quadrilateral.
    static func meanInside(_ prob: [Float], width w: Int, height h: Int, corners c: [SIMD2<Float>]) -> Float {
        let xs = c.map(\.x), ys = c.map(\.y)
        let x0 = max(0, Int(xs.min()!.rounded(.down))), x1 = min(w - 1, Int(xs.max()!.rounded(.up)))
        let y0 = max(0, Int(ys.min()!.rounded(.down))), y1 = min(h - 1, Int(ys.max()!.rounded(.up)))
        guard x0 <= x1, y0 <= y1 else { return 0 }
        var sum: Float = 0, count: Float = 0
        for y in y0...y1 {
            for x in x0...x1 {
                let p = SIMD2(Float(x) + 0.5, Float(y) + 0.5)
                var inside = true
                for i in 0..<4 {
                    let a = c[i], b = c[(i + 1) % 4]
                    if (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x) < 0 { inside = false; break }
                }
                if inside { sum += prob[y * w + x]; count += 1 }
            }
        }
        return count > 0 ? sum / count : 0
    }
}

/// Andrew's monotone chain convex hull, counter-clockwise in image coordinates (y down → the
/// returned order is clockwise on screen).
func convexHull(_ points: [SIMD2<Float>]) -> [SIMD2<Float>] {
    let sorted = Set(points.map { [$0.x, $0.y] }).map { SIMD2($0[0], $0[1]) }.sorted { $0.x != $1.x ? $0.x < $1.x : $0.y < $1.y }
    guard sorted.count > 2 else { return sorted }
    func cross(_ o: SIMD2<Float>, _ a: SIMD2<Float>, _ b: SIMD2<Float>) -> Float { (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x) }
    var lower: [SIMD2<Float>] = [], upper: [SIMD2<Float>] = []
    for p in sorted {
        while lower.count >= 2 && cross(lower[lower.count - 2], lower[lower.count - 1], p) <= 0 { lower.removeLast() }
        lower.append(p)
    }
    for p in sorted.reversed() {
        while upper.count >= 2 && cross(upper[upper.count - 2], upper[upper.count - 1], p) <= 0 { upper.removeLast() }
        upper.append(p)
    }
    return Array(lower.dropLast() + upper.dropLast())
}

/// The minimum-area rectangle around a convex polygon (one side lies on a hull edge).
struct MinAreaRect {
    var center: SIMD2<Float>
    var axis: SIMD2<Float>  // unit vector along `width`
    var width: Float
    var height: Float

    init(points hull: [SIMD2<Float>]) {
        var best = (area: Float.infinity, center: SIMD2<Float>(0, 0), axis: SIMD2<Float>(1, 0), w: Float(0), h: Float(0))
        for i in 0..<hull.count {
            let edge = hull[(i + 1) % hull.count] - hull[i]
            let length = simd_length(edge)
            guard length > 0 else { continue }
            let u = edge / length, v = SIMD2(-u.y, u.x)
            var minU = Float.infinity, maxU = -Float.infinity, minV = Float.infinity, maxV = -Float.infinity
            for p in hull {
                let a = simd_dot(p, u), b = simd_dot(p, v)
                minU = min(minU, a); maxU = max(maxU, a); minV = min(minV, b); maxV = max(maxV, b)
            }
            let area = (maxU - minU) * (maxV - minV)
            if area < best.area {
                let c = u * ((minU + maxU) / 2) + v * ((minV + maxV) / 2)
                best = (area, c, u, maxU - minU, maxV - minV)
            }
        }
        // Report the long side as the width along a mostly-horizontal axis.
        var axis = best.axis, w = best.w, h = best.h
        if abs(axis.x) < abs(axis.y) { axis = SIMD2(-axis.y, axis.x); swap(&w, &h) }
        if axis.x < 0 { axis = -axis }
        center = best.center
        self.axis = axis
        width = w
        height = h
    }

    func grown(by d: Float) -> MinAreaRect {
        var r = self
        r.width += 2 * d
        r.height += 2 * d
        return r
    }

    /// Top-left, top-right, bottom-right, bottom-left (y grows downwards).
    var corners: [SIMD2<Float>] {
        let u = axis * (width / 2), v = SIMD2(-axis.y, axis.x) * (height / 2)
        let down = v.y >= 0 ? v : -v
        return [center - u - down, center + u - down, center + u + down, center - u + down]
    }
}

@inline(__always) func simd_length(_ v: SIMD2<Float>) -> Float { (v.x * v.x + v.y * v.y).squareRoot() }
@inline(__always) func simd_dot(_ a: SIMD2<Float>, _ b: SIMD2<Float>) -> Float { a.x * b.x + a.y * b.y }
