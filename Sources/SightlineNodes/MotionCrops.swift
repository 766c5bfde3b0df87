import SightlineCore

/// Where a small detector looks on a frame from a fixed camera: in square crops around what
/// moved, as Frigate does. BlazePose's person detector sees a whole frame at 224×224, so on a
/// 768×576 street camera a person 100 px tall has a face of about 4 px there and is missed
/// (vtest.avi: nobody found in 136 of 159 sampled frames with half a dozen people walking). A
/// crop of about twice a moving person's size shows them to the detector at 1–2× their size.
/// Pure: a tile mask and boxes in, crops out.
public struct MotionCropPlanner: Sendable, Equatable {
    /// A crop's side is at least this (pixels), so a small change is seen with its surroundings.
    public var minSide: Double
    /// Moving regions shorter than this (pixels, both sides) get no crop: a lone changed tile is
    /// noise, or a thing far too small for the detector even at crop scale (a person must be
    /// about 50 px tall for BlazePose to see the face it finds people by).
    public var minRegionSide: Double
    /// A crop's side is the moving region's longer side times this.
    public var growth: Double
    /// Crops are at most this fraction of the frame's shorter side. A moving region whose crop
    /// would be larger is big enough for the whole-frame pass, which then runs too, with crops of
    /// this size over the region for the small things in it.
    public var wholeFrameAbove: Double
    /// Two crops become one when the square around both is at most this much longer than the
    /// larger of them (one detector run instead of two, at a slightly smaller scale).
    public var mergeGrowth: Double
    /// Crops only while at most this fraction of the tiles changed (a fixed camera with things
    /// moving in it); more, and the picture itself moves (a pan, a cut): the whole frame only,
    /// as without crops.
    public var localBelow: Double
    /// At most this many crops per frame, so the cost stays bounded; a frame that needs more
    /// (a crowd, the camera moved) keeps the largest and runs the whole frame too.
    public var maxCrops: Int

    public init(minSide: Double = 160, minRegionSide: Double = 32, growth: Double = 1.5, wholeFrameAbove: Double = 0.5, mergeGrowth: Double = 1.3,
                localBelow: Double = 0.25, maxCrops: Int = 6) {
        self.minSide = max(1, minSide)
        self.minRegionSide = max(0, minRegionSide)
        self.growth = max(1, growth)
        self.wholeFrameAbove = wholeFrameAbove
        self.mergeGrowth = max(1, mergeGrowth)
        self.localBelow = localBelow
        self.maxCrops = max(0, maxCrops)
    }

    public struct Plan: Sendable, Equatable {
        /// Run the detector on the whole frame too.
        public var wholeFrame: Bool
        /// Whole-pixel squares inside the frame (shorter only where the frame is).
        public var crops: [PixelBox]
        /// The camera stands still: what moved is local (or, on a refresh, things were known
        /// from such frames). Otherwise the picture itself moves: the whole frame only.
        public var local: Bool
    }

    /// The crops for a frame. `changed`: the tiles that moved since the detector last looked
    /// (nil: unknown — the first frame, a shot change, a periodic refresh); `known`: where it
    /// found things then, looked at again when nothing says where the motion is (the caller
    /// passes them only while the camera stands still: `DetectionCarryOver.local`).
    public func plan(width: Int, height: Int, changed: TileMask?, known: [PixelBox]) -> Plan {
        guard width > 0, height > 0 else { return Plan(wholeFrame: false, crops: [], local: false) }
        if let changed, changed.fraction > localBelow { return Plan(wholeFrame: true, crops: [], local: false) }
        let shorter = Double(min(width, height))
        let maxSide = max(minSide, wholeFrameAbove * shorter)
        var wholeFrame = changed == nil
        let regions = changed.map(CropPlanner.components) ?? known
        var crops: [PixelBox] = []
        for region in regions {
            let side = max(region.width, region.height)
            guard side > 0, side >= minRegionSide else { continue }
            if side * growth <= maxSide {
                crops.append(CropPlanner.square(around: region.centre, side: max(minSide, side * growth), width: width, height: height))
            } else {
                // Large: the whole frame shows it well enough, and crops of the largest size
                // cover it for the small things inside (a group walking together).
                wholeFrame = true
                crops += Self.cover(region, side: maxSide, width: width, height: height)
            }
        }
        // Over the budget (a crowd, or the camera moved): the largest crops, and the whole frame
        // for what they leave out.
        crops = merged(crops, maxSide: maxSide, width: width, height: height)
        if crops.count > maxCrops {
            crops = Array(crops.sorted { $0.area > $1.area }.prefix(maxCrops))
            wholeFrame = true
        }
        return Plan(wholeFrame: wholeFrame, crops: crops.map { Self.wholePixels($0, width: width, height: height) },
                    local: changed != nil || !known.isEmpty)
    }

    /// Squares of `side` overlapping by a quarter that cover `region` grown by a quarter side.
    static func cover(_ region: PixelBox, side: Double, width: Int, height: Int) -> [PixelBox] {
        let pad = side / 4
        let x0 = max(0, region.x - pad), y0 = max(0, region.y - pad)
        let x1 = min(Double(width), region.x + region.width + pad), y1 = min(Double(height), region.y + region.height + pad)
        func starts(_ from: Double, _ to: Double) -> [Double] {
            let span = to - from
            guard span > side else { return [from + span / 2] }
            let count = Int(((span - side) / (side * 0.75)).rounded(.up)) + 1
            return (0..<count).map { from + side / 2 + (span - side) * Double($0) / Double(count - 1) }
        }
        return starts(y0, y1).flatMap { cy in
            starts(x0, x1).map { cx in CropPlanner.square(around: PixelPoint(x: cx, y: cy), side: side, width: width, height: height) }
        }
    }

    /// Pairs merged while the square around both is at most `mergeGrowth` times the larger
    /// and at most `maxSide`.
    func merged(_ crops: [PixelBox], maxSide: Double, width: Int, height: Int) -> [PixelBox] {
        var crops = crops
        var mergedAny = true
        while mergedAny {
            mergedAny = false
            search: for i in crops.indices {
                for j in crops.indices where j > i {
                    let a = crops[i], b = crops[j]
                    let x0 = min(a.x, b.x), y0 = min(a.y, b.y)
                    let x1 = max(a.x + a.width, b.x + b.width), y1 = max(a.y + a.height, b.y + b.height)
                    let side = max(x1 - x0, y1 - y0)
                    guard side <= min(maxSide, mergeGrowth * max(a.width, a.height, b.width, b.height)) else { continue }
                    crops[i] = CropPlanner.square(around: PixelPoint(x: (x0 + x1) / 2, y: (y0 + y1) / 2), side: side, width: width, height: height)
                    crops.remove(at: j)
                    mergedAny = true
                    break search
                }
            }
        }
        return crops
    }

    /// The box on whole pixels (a cropped frame starts and ends on them), inside the frame.
    static func wholePixels(_ box: PixelBox, width: Int, height: Int) -> PixelBox {
        let x0 = max(0, Int(box.x.rounded(.down))), y0 = max(0, Int(box.y.rounded(.down)))
        let x1 = min(width, Int((box.x + box.width).rounded(.up))), y1 = min(height, Int((box.y + box.height).rounded(.up)))
        return PixelBox(x: Double(x0), y: Double(y0), width: Double(max(0, x1 - x0)), height: Double(max(0, y1 - y0)))
    }
}

/// What a detector that looks only where things moved reports for each frame of a source: what
/// it found now, plus what it found before away from every change (a person standing still
/// is still there). A pure state machine. Two detections are the same thing when their faces
/// (people) or boxes overlap by more than `overlap`; the higher score wins, and a fresh
/// detection always beats a kept one.
public struct DetectionCarryOver: Sendable, Equatable {
    public var overlap: Double
    /// The last frame's detections.
    public private(set) var known: [DetectedObject] = []
    /// Whether the last frame was looked at in crops (the camera stood still): a refresh then
    /// looks again around what was known.
    public private(set) var local = false

    public init(overlap: Double = 0.3) {
        self.overlap = overlap
    }

    /// This frame's detections. `changed` as for `MotionCropPlanner.plan` (nil: nothing is
    /// kept — what is still there was looked for again); `local`: the frame was looked at in
    /// crops.
    public mutating func next(found: [DetectedObject], changed: TileMask?, local: Bool) -> [DetectedObject] {
        self.local = local
        var result: [DetectedObject] = []
        for object in found.sorted(by: { $0.score > $1.score }) where !result.contains(where: { same($0, object) }) {
            result.append(object)
        }
        if let changed {
            for object in known where !changed.touches(object.box) && !result.contains(where: { same($0, object) }) {
                result.append(object)
            }
        }
        known = result
        return result
    }

    func same(_ a: DetectedObject, _ b: DetectedObject) -> Bool {
        (a.face ?? a.box).iou(b.face ?? b.box) > overlap
    }
}
