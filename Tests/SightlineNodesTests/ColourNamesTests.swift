import Testing
import SightlineCore
@testable import SightlineNodes

/// Colour names for search: per pixel, and the dominant one of a box and of a person's body.
@Suite struct ColourNamesTests {
    @Test(arguments: [
        ((220, 30, 30), "red"), ((30, 60, 200), "blue"), ((40, 160, 60), "green"), ((240, 220, 40), "yellow"), ((245, 140, 20), "orange"),
        ((10, 10, 10), "black"), ((245, 245, 245), "white"), ((128, 128, 128), "grey"), ((110, 60, 20), "brown"), ((130, 40, 170), "purple"),
        ((250, 150, 190), "pink"),
    ] as [((Int, Int, Int), String)])
    func pixels(rgb: (Int, Int, Int), name: String) {
        #expect(ColourNames.name(red: UInt8(rgb.0), green: UInt8(rgb.1), blue: UInt8(rgb.2)) == name)
    }

    /// A figure with a red top and blue trousers on a grey background.
    @Test func aPersonsUpperAndLowerBody() {
        let width = 100, height = 200
        var pixels = [UInt8](repeating: 128, count: width * height * 3)
        func paint(_ y0: Int, _ y1: Int, _ rgb: (UInt8, UInt8, UInt8)) {
            for y in y0..<y1 { for x in 30..<70 { let o = (y * width + x) * 3; (pixels[o], pixels[o + 1], pixels[o + 2]) = rgb } }
        }
        paint(40, 105, (200, 20, 30))
        paint(105, 180, (20, 40, 160))
        let frame = Frame(sourceID: "s", decodeIndex: 0, timestamp: Timestamp(pts: 0, timeBase: Rational(1, 1)), seconds: 0, ingestWallClock: 0,
                          isKeyframe: true, width: width, height: height, pixelFormat: .rgb24, pixels: pixels)
        let body = ColourNames.person(in: frame, box: PixelBox(x: 0, y: 0, width: 100, height: 200))
        #expect(body.upper == "red" && body.lower == "blue")
        #expect(ColourNames.dominant(in: frame, box: PixelBox(x: 0, y: 0, width: 25, height: 200)) == "grey")
        #expect(ColourNames.dominant(in: frame, box: PixelBox(x: 500, y: 500, width: 10, height: 10)) == nil)
    }

    /// A close-up: the person's box (a square around the whole body) reaches far below the
    /// frame, the face fills the top. The torso between the keypoints is red; the legs are out
    /// of the frame, so no lower colour is claimed. Box fractions named the face's colour.
    @Test func aCloseUpIsColouredByItsKeypoints() {
        let width = 100, height = 100
        var pixels = [UInt8](repeating: 128, count: width * height * 3)
        func paint(_ y0: Int, _ y1: Int, _ rgb: (UInt8, UInt8, UInt8)) {
            for y in y0..<y1 { for x in 10..<90 { let o = (y * width + x) * 3; (pixels[o], pixels[o + 1], pixels[o + 2]) = rgb } }
        }
        paint(0, 55, (230, 190, 160))   // the face, skin-toned
        paint(55, 100, (200, 20, 30))   // a red top down to the bottom edge
        let frame = Frame(sourceID: "s", decodeIndex: 0, timestamp: Timestamp(pts: 0, timeBase: Rational(1, 1)), seconds: 0, ingestWallClock: 0,
                          isKeyframe: true, width: width, height: height, pixelFormat: .rgb24, pixels: pixels)
        let person = DetectedObject(box: PixelBox(x: -200, y: -150, width: 500, height: 500), score: 0.9, keypoints: [
            Keypoint(name: "shoulder_center", x: 50, y: 55), Keypoint(name: "hip_center", x: 50, y: 105),
        ])
        let placed = ColourNames.person(in: frame, object: person)
        #expect(placed.upper == "red", "\(placed)")
        #expect(placed.lower == nil, "the legs are out of the frame")
        let byBox = ColourNames.person(in: frame, box: person.box)
        #expect(byBox.upper != "red", "box fractions miss the torso in a close-up (\(byBox))")
        // Without keypoints the box fractions are used.
        #expect(ColourNames.person(in: frame, object: DetectedObject(box: person.box, score: 0.9)) == byBox)
    }
}
