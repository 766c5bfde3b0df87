import Testing
import SightlineCore
import SightlineModels
@testable import SightlineNodes

/// Where a detector looks on a fixed camera's frame (`MotionCropPlanner`), and what it reports
/// across frames (`DetectionCarryOver`).
@Suite struct MotionCropsTests {
    /// A 768×576 frame's 16 px grid (48×36) with the given tiles set (column, row ranges).
    func mask(_ blocks: [(columns: Range<Int>, rows: Range<Int>)]) -> TileMask {
        var bits = [Bool](repeating: false, count: 48 * 36)
        for block in blocks { for r in block.rows { for c in block.columns { bits[r * 48 + c] = true } } }
        return TileMask(tileSize: 16, columns: 48, rows: 36, bits: bits)
    }

    @Test func aSmallMovingRegionGetsASquareCropAroundIt() {
        // A person walking: 3×6 tiles at x 320–368, y 160–256.
        let plan = MotionCropPlanner().plan(width: 768, height: 576, changed: mask([(20..<23, 10..<16)]), known: [])
        #expect(!plan.wholeFrame && plan.local)
        #expect(plan.crops.count == 1)
        let crop = plan.crops[0]
        // 1.5 × the longer side (96 px) is 144, below the 160 px minimum.
        #expect(crop.width == 160 && crop.height == 160)
        #expect(crop.x <= 320 && crop.x + crop.width >= 368 && crop.y <= 160 && crop.y + crop.height >= 256)
        // On whole pixels, inside the frame.
        #expect(crop.x == crop.x.rounded() && crop.y == crop.y.rounded() && crop.x >= 0 && crop.y >= 0)
        // A lone changed tile far away is noise: no crop for it.
        let noisy = MotionCropPlanner().plan(width: 768, height: 576, changed: mask([(20..<23, 10..<16), (40..<41, 30..<31)]), known: [])
        #expect(noisy.crops == plan.crops)
    }

    @Test func cropsStayInsideTheFrameAndNearbyOnesMerge() {
        // One region in the bottom-right corner; two regions a tile apart merge into one crop.
        let plan = MotionCropPlanner().plan(width: 768, height: 576, changed: mask([(45..<48, 33..<36), (2..<5, 2..<6), (6..<9, 2..<6)]),
                                            known: [])
        #expect(plan.crops.count == 2)
        for crop in plan.crops { #expect(crop.x + crop.width <= 768 && crop.y + crop.height <= 576) }
        #expect(plan.crops.contains { $0.x + $0.width == 768 && $0.y + $0.height == 576 })
        let pair = plan.crops.first { $0.x < 100 }
        #expect(pair.map { $0.x <= 32 && $0.x + $0.width >= 160 } == true)
        // Far apart, they stay two crops.
        let apart = MotionCropPlanner().plan(width: 768, height: 576, changed: mask([(2..<5, 2..<6), (30..<33, 20..<24)]), known: [])
        #expect(apart.crops.count == 2)
    }

    @Test func aLargeRegionRunsTheWholeFrameAndIsCoveredByCrops() {
        // 20×12 tiles (320×192 px): its crop would pass half the frame's height (288).
        let plan = MotionCropPlanner().plan(width: 768, height: 576, changed: mask([(10..<30, 10..<22)]), known: [])
        #expect(plan.wholeFrame)
        #expect(plan.crops.count >= 2 && plan.crops.allSatisfy { $0.width == 288 && $0.height == 288 })
        // The crops together cover the region.
        for x in stride(from: 160.0, to: 480, by: 16) {
            for y in stride(from: 160.0, to: 352, by: 16) {
                #expect(plan.crops.contains { x >= $0.x && x < $0.x + $0.width && y >= $0.y && y < $0.y + $0.height }, "(\(x), \(y))")
            }
        }
    }

    @Test func overTheBudgetTheLargestCropsAndTheWholeFrame() {
        // Five regions 7 to 11 tiles tall: crops of 168 to 264 px, too far apart to merge.
        let regions = (0..<5).map { (columns: ($0 * 9)..<($0 * 9 + 2), rows: 2..<(9 + $0)) }
        let planner = MotionCropPlanner(maxCrops: 3)
        let all = MotionCropPlanner(maxCrops: 10).plan(width: 768, height: 576, changed: mask(regions), known: [])
        #expect(all.crops.count == 5 && !all.wholeFrame)
        let plan = planner.plan(width: 768, height: 576, changed: mask(regions), known: [])
        #expect(plan.wholeFrame && plan.crops.count == 3)
        let largest = all.crops.map(\.area).sorted(by: >).prefix(3)
        #expect(plan.crops.map(\.area).sorted(by: >) == Array(largest))
    }

    @Test func whenThePictureMovesOrIsUnknownTheWholeFrame() {
        let planner = MotionCropPlanner()
        // A third of the tiles changed: a pan, not a person.
        let pan = planner.plan(width: 768, height: 576, changed: mask([(0..<48, 0..<12)]), known: [PixelBox(x: 300, y: 200, width: 60, height: 60)])
        #expect(pan == MotionCropPlanner.Plan(wholeFrame: true, crops: [], local: false))
        // A refresh with nothing known: the whole frame only; with known people: crops around
        // them too.
        #expect(planner.plan(width: 768, height: 576, changed: nil, known: []) == MotionCropPlanner.Plan(wholeFrame: true, crops: [], local: false))
        let refresh = planner.plan(width: 768, height: 576, changed: nil, known: [PixelBox(x: 300, y: 200, width: 60, height: 60)])
        #expect(refresh.wholeFrame && refresh.local && refresh.crops.count == 1)
        #expect(refresh.crops[0].iou(PixelBox(x: 250, y: 150, width: 160, height: 160)) > 0.99)
        // Nothing changed: nothing to look at.
        #expect(planner.plan(width: 768, height: 576, changed: mask([]), known: []) == MotionCropPlanner.Plan(wholeFrame: false, crops: [], local: true))
    }

    func person(_ x: Double, _ y: Double, score: Double = 0.9) -> DetectedObject {
        DetectedObject(box: PixelBox(x: x, y: y, width: 60, height: 60), score: score, face: PixelBox(x: x + 20, y: y, width: 20, height: 20))
    }

    @Test func detectionsAwayFromEveryChangeAreKept() {
        var carry = DetectionCarryOver()
        let a = person(100, 100), b = person(500, 300, score: 0.85)
        #expect(carry.next(found: [a, b], changed: nil, local: true) == [a, b])
        #expect(carry.local)
        // Only around b changed (tiles at x 512–560, y 320–368), and b was found again moved.
        let moved = person(510, 305, score: 0.8)
        #expect(carry.next(found: [moved], changed: mask([(32..<35, 20..<23)]), local: true) == [moved, a])
        // b walked off: its tiles changed and nothing was found there.
        #expect(carry.next(found: [], changed: mask([(32..<35, 20..<23)]), local: true) == [a])
        // A refresh keeps nothing it did not find again.
        #expect(carry.next(found: [b], changed: nil, local: false) == [b])
        #expect(!carry.local)
    }

    @Test func theSameFaceFoundTwiceIsOneDetection() {
        var carry = DetectionCarryOver()
        // Two crops saw the same person; the higher score wins. Two people side by side, whose
        // body squares overlap but whose faces do not, stay two.
        let once = person(100, 100, score: 0.7), twice = person(102, 101, score: 0.95), neighbour = person(135, 100)
        let result = carry.next(found: [once, twice, neighbour], changed: nil, local: true)
        #expect(result == [twice, neighbour])
        // A fresh detection beats a kept one at the same place, whatever the scores.
        let fresh = person(101, 100, score: 0.6)
        #expect(carry.next(found: [fresh], changed: mask([(20..<22, 20..<22)]), local: true) == [fresh, neighbour])
    }

    /// Frames held by a gate's `interval` add their changes to the next frame detected.
    @Test func theChangesOfHeldFramesAddUp() {
        let a = mask([(0..<2, 0..<2)]), b = mask([(10..<12, 5..<6)])
        let both = MotionCropDetection.union([a, b])
        #expect(both == mask([(0..<2, 0..<2), (10..<12, 5..<6)]))
        #expect(MotionCropDetection.union([a]) == a)
        #expect(MotionCropDetection.union([]) == nil, "no record: unknown")
        #expect(MotionCropDetection.union([a, nil, b]) == nil, "a refresh among them")
        #expect(MotionCropDetection.union([a, TileMask(tileSize: 16, columns: 2, rows: 1, bits: [true, false])]) == nil, "another grid")
    }

    @Test func aMaskTouchesTheBoxesItsSetTilesOverlap() {
        let m = mask([(10..<11, 5..<6)])  // x 160–176, y 80–96
        #expect(m.touches(PixelBox(x: 150, y: 70, width: 11, height: 11)))
        #expect(m.touches(PixelBox(x: 175.5, y: 95.5, width: 10, height: 10)))
        #expect(!m.touches(PixelBox(x: 176, y: 80, width: 30, height: 30)))
        #expect(!m.touches(PixelBox(x: 100, y: 60, width: 60, height: 20)))
        #expect(!m.touches(PixelBox(x: 2000, y: 2000, width: 10, height: 10)))
        #expect(!m.touches(PixelBox(x: 160, y: 80, width: 0, height: 10)))
    }

    @Test func aDetectionOnACropMapsBackToTheFrame() {
        let d = NormalizedDetection(xmin: 0.25, ymin: 0.5, width: 0.5, height: 0.25, score: 0.9, keypoints: [SIMD2(0.5, 0.5)])
        let f = d.fromCrop(PixelBox(x: 100, y: 50, width: 200, height: 200), frameWidth: 800, frameHeight: 400)
        // Crop pixels (50, 100, 100×50) are frame pixels (150, 150, 100×50).
        #expect(abs(f.xmin * 800 - 150) < 1e-3 && abs(f.ymin * 400 - 150) < 1e-3)
        #expect(abs(f.width * 800 - 100) < 1e-3 && abs(f.height * 400 - 50) < 1e-3)
        #expect(abs(f.keypoints[0].x * 800 - 200) < 1e-3 && abs(f.keypoints[0].y * 400 - 150) < 1e-3)
        #expect(f.score == 0.9)
    }
}
