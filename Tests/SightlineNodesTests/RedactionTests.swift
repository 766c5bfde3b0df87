import Foundation
import Testing
import SightlineCore
@testable import SightlineGraph
@testable import SightlineNodes

/// Redaction: which boxes each frame hides (timelines through the planner), how they are
/// hidden, and the node.
@Suite struct RedactionPlannerTests {
    let face = PixelBox(x: 100, y: 100, width: 50, height: 50)

    /// Frames 0…n−1 with detections per frame (nil: the detector did not run), released boxes per frame.
    func run(_ detections: [[PixelBox]?], lookback: Int = 2, coast: Int = 3) -> [[PixelBox]] {
        var planner = RedactionPlanner<Int>(lookback: lookback, coast: coast)
        var out: [(Int, [PixelBox])] = []
        for (i, d) in detections.enumerated() { out += planner.push(i, detections: d, at: Double(i) / 25).map { ($0.payload, $0.boxes) } }
        out += planner.finish().map { ($0.payload, $0.boxes) }
        #expect(out.map(\.0) == Array(detections.indices), "every frame once, in order")
        return out.map(\.1)
    }

    @Test func aMissedDetectionStillHidesTheFace() {
        let boxes = run([[face], [face], [], [face], [face]])
        #expect(boxes.allSatisfy { !$0.isEmpty })
        #expect(boxes[2].first.map { $0.iou(face) > 0.8 } == true, "the coasting box is where the face was")
    }

    @Test func aFaceFoundLateIsHiddenInTheHeldFramesBefore() {
        let boxes = run([[], [], [], [face], [face]], lookback: 2)
        #expect(boxes.map(\.isEmpty) == [true, false, false, false, false])
    }

    @Test func framesTheDetectorSkippedAreCoveredByTheTracks() {
        let boxes = run([[face], nil, nil, [face], nil, nil], lookback: 0, coast: 4)
        #expect(boxes.allSatisfy { !$0.isEmpty })
    }

    @Test func aFaceThatLeavesIsHiddenForCoastFramesThenNoMore() {
        let boxes = run([[face], [], [], [], [], []], lookback: 0, coast: 2)
        #expect(boxes.map(\.isEmpty) == [false, false, false, true, true, true])
    }
}

@Suite struct RedactorTests {
    static func frame() -> Frame {
        var seed: UInt64 = 7
        let pixels = (0..<(64 * 48 * 3)).map { _ -> UInt8 in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: seed >> 56)
        }
        return Frame(sourceID: "cam", decodeIndex: 0, timestamp: Timestamp(pts: 0, timeBase: Rational(1, 25)), seconds: 0, ingestWallClock: 0,
                     isKeyframe: true, width: 64, height: 48, pixelFormat: .rgb24, pixels: pixels)
    }

    /// Inside the grown box the noise is gone (its spread falls to a fifth or less); outside
    /// nothing changed.
    @Test(arguments: RedactionStyle.allCases)
    func insideHiddenOutsideUntouched(style: RedactionStyle) {
        let original = Self.frame()
        var frame = original
        Redactor.apply(&frame, boxes: [PixelBox(x: 20, y: 16, width: 16, height: 16)], style: style, margin: 0.25)
        var inside: [Double] = [], before: [Double] = [], changedOutside = 0
        for y in 0..<48 {
            for x in 0..<64 {
                let o = (y * 64 + x) * 3
                if (16..<40).contains(x) && (12..<36).contains(y) {
                    inside.append(Double(frame.pixels[o]))
                    before.append(Double(original.pixels[o]))
                } else if frame.pixels[o] != original.pixels[o] { changedOutside += 1 }
            }
        }
        #expect(changedOutside == 0)
        func spread(_ v: [Double]) -> Double {
            let mean = v.reduce(0, +) / Double(v.count)
            return (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)).squareRoot()
        }
        #expect(spread(inside) <= spread(before) / 5, "\(style): spread \(spread(inside)) from \(spread(before))")
    }
}

@Suite struct RedactNodeTests {
    @Test func framesPassWithTheirFacesHiddenAndNoneIsLost() throws {
        let node = RedactNode(style: .fill, margin: 0, lookback: 1, coast: 2)
        let context = try TestContext()
        var frames: [Frame] = []
        for i in 0..<4 {
            var frame = RedactorTests.frame()
            frame.decodeIndex = i
            frame.seconds = Double(i)
            let faces = Detections(frameIndex: i, width: 64, height: 48, objects: i == 2 ? [DetectedObject(box: PixelBox(x: 8, y: 8, width: 8, height: 8), score: 0.9)] : [])
            try node.process(.record(Record(.faces(faces), frame: frame)), context: context) { _ in }
            try node.process(.frame(frame), context: context) { if case .frame(let f) = $0 { frames.append(f) } }
        }
        #expect(frames.count == 3, "one frame held back")
        try node.process(.endOfStream(EndOfStream(sourceID: "cam")), context: context) { if case .frame(let f) = $0 { frames.append(f) } }
        #expect(frames.map(\.decodeIndex) == [0, 1, 2, 3])
        // Frame 1 (held when the face was found in frame 2), 2 and 3 (coasting) are filled black there.
        #expect(frames.map { $0.pixels[(10 * 64 + 10) * 3] == 0 && $0.pixels[(10 * 64 + 10) * 3 + 1] == 0 } == [false, true, true, true])
        #expect(frames[2].metadata["sl.redact.faces"] == "1")
    }
}
