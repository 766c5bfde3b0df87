import Testing
import SightlineCore
@testable import SightlineNodes

/// Which crops the labels node classifies besides the whole frame.
@Suite struct CropPlannerTests {
    @Test func peopleFirstThenMotionThenTheSidesOfAWideFrame() {
        let planner = CropPlanner(maxCrops: 4)
        var bits = [Bool](repeating: false, count: 20 * 12)
        for r in 2..<5 { for c in 14..<17 { bits[r * 20 + c] = true } }  // a moving thing, top right
        let motion = TileMask(tileSize: 64, columns: 20, rows: 12, bits: bits)
        let crops = planner.crops(width: 1280, height: 720, people: [PixelBox(x: 100, y: 300, width: 100, height: 250)], motion: motion)
        #expect(crops.map(\.origin) == [.person, .motion, .left, .right])
        // The person's crop is a square around them with context, inside the frame.
        let person = crops[0].box
        #expect(person.width == 400 && person.height == 400 && person.x == 0 && person.y == 225)
        // The motion crop holds the changed tiles (x 896–1088, y 128–320).
        let moved = crops[1].box
        #expect(moved.x <= 896 && moved.x + moved.width >= 1088 && moved.y <= 128 && moved.y + moved.height >= 320)
    }

    @Test func boundedOverlappingAndTinyCropsAreDropped() {
        let planner = CropPlanner(maxCrops: 2)
        let twins = [PixelBox(x: 300, y: 100, width: 100, height: 200), PixelBox(x: 305, y: 100, width: 100, height: 200)]
        let crops = planner.crops(width: 640, height: 480, people: twins + [PixelBox(x: 10, y: 10, width: 30, height: 60)], motion: nil)
        #expect(crops.count == 2 && crops.allSatisfy { $0.origin == .person })
        #expect(crops[0].box.iou(crops[1].box) <= 0.5)
        // One changed tile is noise; a narrow frame has no sides; nothing asked, nothing given.
        var bits = [Bool](repeating: false, count: 10 * 8)
        bits[13] = true
        #expect(planner.crops(width: 640, height: 480, people: [], motion: TileMask(tileSize: 64, columns: 10, rows: 8, bits: bits)).isEmpty)
        #expect(CropPlanner(maxCrops: 0).crops(width: 1280, height: 720, people: twins, motion: nil).isEmpty)
    }

    @Test func aCropIsTheFramesPixels() throws {
        let pixels = (0..<(4 * 3 * 3)).map { UInt8($0) }
        let frame = Frame(sourceID: "s", decodeIndex: 0, timestamp: Timestamp(pts: 0, timeBase: Rational(1, 1)), seconds: 0, ingestWallClock: 0,
                          isKeyframe: true, width: 4, height: 3, pixelFormat: .rgb24, pixels: pixels)
        let crop = try #require(frame.cropped(to: PixelBox(x: 1, y: 1, width: 2, height: 5)))
        #expect(crop.width == 2 && crop.height == 2)
        #expect(crop.pixels == [15, 16, 17, 18, 19, 20, 27, 28, 29, 30, 31, 32])
        #expect(frame.cropped(to: PixelBox(x: 10, y: 10, width: 5, height: 5)) == nil)
    }
}

