import SightlineCore

/// Which crops of a frame a classifier should look at besides the whole frame: around the
/// people in it (with their surroundings, where the bicycle they ride or the thing they hold
/// is), around what moved, and the two sides of a wide frame, which the model's centre crop
/// cuts off. Pure: boxes in, boxes out.
public struct CropPlanner: Sendable, Equatable {
    /// At most this many crops per frame (each costs one more classifier run).
    public var maxCrops: Int
    /// A person's crop is the body box grown by this factor (context around them).
    public var personContext: Double
    /// Frames at least this much wider than tall get left and right squares.
    public var wideAspect: Double
    /// Motion components smaller than this fraction of the frame's shorter side are noise.
    public var minMotionSide: Double
    /// A crop covering more than this fraction of the frame adds nothing to the whole frame.
    public var maxAreaFraction: Double
    /// A crop overlapping an earlier one by more than this IoU is dropped.
    public var maxOverlap: Double

    public init(maxCrops: Int = 2, personContext: Double = 1.6, wideAspect: Double = 1.5, minMotionSide: Double = 0.15,
                maxAreaFraction: Double = 0.6, maxOverlap: Double = 0.5) {
        self.maxCrops = maxCrops
        self.personContext = personContext
        self.wideAspect = wideAspect
        self.minMotionSide = minMotionSide
        self.maxAreaFraction = maxAreaFraction
        self.maxOverlap = maxOverlap
    }

    public struct Crop: Sendable, Equatable {
        public var origin: RegionLabels.Origin
        public var box: PixelBox
    }

    /// Crops in priority order: people (largest first), motion (largest first), then the
    /// sides of a wide frame. `motion` is the changed-tile mask against the previous sampled
    /// frame (nil when unknown, or when the whole frame changed).
    public func crops(width: Int, height: Int, people: [PixelBox], motion: TileMask?) -> [Crop] {
        guard maxCrops > 0, width > 0, height > 0 else { return [] }
        let frameArea = Double(width * height), shorter = Double(min(width, height))
        var candidates: [Crop] = []
        for person in people.sorted(by: { $0.area > $1.area }) {
            let side = max(person.width, person.height) * personContext
            candidates.append(Crop(origin: .person, box: Self.square(around: person.centre, side: side, width: width, height: height)))
        }
        if let motion {
            for component in Self.components(motion).sorted(by: { $0.area > $1.area }) {
                guard max(component.width, component.height) >= minMotionSide * shorter else { continue }
                let side = max(component.width, component.height) * 1.25
                candidates.append(Crop(origin: .motion, box: Self.square(around: component.centre, side: side, width: width, height: height)))
            }
        }
        if Double(width) >= wideAspect * Double(height) {
            let side = Double(height)
            candidates.append(Crop(origin: .left, box: PixelBox(x: 0, y: 0, width: side, height: side)))
            candidates.append(Crop(origin: .right, box: PixelBox(x: Double(width) - side, y: 0, width: side, height: side)))
        }
        var chosen: [Crop] = []
        for crop in candidates where chosen.count < maxCrops {
            guard crop.box.area > 0, crop.box.area <= maxAreaFraction * frameArea || crop.origin == .left || crop.origin == .right,
                  chosen.allSatisfy({ $0.box.iou(crop.box) <= maxOverlap }) else { continue }
            chosen.append(crop)
        }
        return chosen
    }

    /// A square of `side` centred on `centre` as far as the frame allows: shifted to stay
    /// inside, and cut only when the frame itself is smaller.
    static func square(around centre: PixelPoint, side: Double, width: Int, height: Int) -> PixelBox {
        let w = min(side, Double(width)), h = min(side, Double(height))
        let x = min(max(centre.x - w / 2, 0), Double(width) - w)
        let y = min(max(centre.y - h / 2, 0), Double(height) - h)
        return PixelBox(x: x, y: y, width: w, height: h)
    }

    /// Bounding boxes (pixels) of the 8-connected groups of set tiles.
    static func components(_ mask: TileMask) -> [PixelBox] {
        var seen = [Bool](repeating: false, count: mask.bits.count)
        var boxes: [PixelBox] = []
        for start in mask.bits.indices where mask.bits[start] && !seen[start] {
            var stack = [start]
            seen[start] = true
            var (r0, r1, c0, c1) = (Int.max, Int.min, Int.max, Int.min)
            while let index = stack.popLast() {
                let r = index / mask.columns, c = index % mask.columns
                (r0, r1, c0, c1) = (min(r0, r), max(r1, r), min(c0, c), max(c1, c))
                for dr in -1...1 {
                    for dc in -1...1 {
                        let rr = r + dr, cc = c + dc
                        guard rr >= 0, rr < mask.rows, cc >= 0, cc < mask.columns else { continue }
                        let next = rr * mask.columns + cc
                        if mask.bits[next] && !seen[next] {
                            seen[next] = true
                            stack.append(next)
                        }
                    }
                }
            }
            let t = Double(mask.tileSize)
            boxes.append(PixelBox(x: Double(c0) * t, y: Double(r0) * t, width: Double(c1 - c0 + 1) * t, height: Double(r1 - r0 + 1) * t))
        }
        return boxes
    }
}
