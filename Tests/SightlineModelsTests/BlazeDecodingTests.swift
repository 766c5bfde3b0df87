import Foundation
import Testing
@testable import SightlineModels

/// Anchors and weighted NMS on their own, with numbers worked out by hand from MediaPipe's
/// SsdAnchorsCalculator and NonMaxSuppressionCalculator settings.
@Suite struct BlazeDecodingTests {
    @Test func anchorCountsMatchTheModelsOutputs() {
        // 16×16×2 + 8×8×6 (three stride-16 layers, two anchors each) for the short-range face model;
        // 48×48 one layer with one anchor for the full-range one; 28²·2 + 14²·2 + 7²·6 for people.
        #expect(MediaPipeDetectors.Graph.faceShort.configuration.anchors.anchors().count == 896)
        #expect(MediaPipeDetectors.Graph.faceFull.configuration.anchors.anchors().count == 2304)
        #expect(MediaPipeDetectors.Graph.person.configuration.anchors.anchors().count == 2254)
    }

    @Test func anchorsAreCellCentresOfUnitSize() {
        let anchors = MediaPipeDetectors.Graph.faceShort.configuration.anchors.anchors()
        // First stride-8 cell, twice (the layer's anchor and its interpolated twin).
        #expect(anchors[0] == .init(x: 0.5 / 16, y: 0.5 / 16, width: 1, height: 1))
        #expect(anchors[1] == anchors[0])
        // The first stride-16 anchor follows the 512 of the 16×16 grid.
        #expect(anchors[512] == .init(x: 0.5 / 8, y: 0.5 / 8, width: 1, height: 1))
        #expect(anchors[895].x == 7.5 / 8 && anchors[895].y == 7.5 / 8)
    }

    @Test func decodingScalesByTheInputAndAppliesTheSigmoid() {
        let anchors = [SSDAnchorOptions.Anchor(x: 0.25, y: 0.5, width: 1, height: 1), .init(x: 0.75, y: 0.5, width: 1, height: 1)]
        let decoding = DetectionDecoding(coordinates: 6, keypoints: 1, scale: 100, minScore: 0.5)
        // Anchor 0: centre moved by (10, −20) px of 100, box 40×20, keypoint at (+5, +5); anchor 1 below the bar.
        let boxes: [Float] = [10, -20, 40, 20, 5, 5, 0, 0, 10, 10, 0, 0]
        let found = decoding.decode(boxes: boxes, scores: [2, -1], anchors: anchors)
        #expect(found.count == 1)
        let d = found[0]
        #expect(abs(d.xmin - (0.35 - 0.2)) < 1e-6 && abs(d.ymin - (0.3 - 0.1)) < 1e-6)
        #expect(abs(d.width - 0.4) < 1e-6 && abs(d.height - 0.2) < 1e-6)
        #expect(abs(d.score - Float(1 / (1 + Foundation.exp(-2.0)))) < 1e-6)
        #expect(abs(d.keypoints[0].x - 0.3) < 1e-6 && abs(d.keypoints[0].y - 0.55) < 1e-6)
    }

    @Test func weightedSuppressionAveragesOverlapsAndKeepsTheBestScore() {
        func box(_ x: Float, _ score: Float) -> NormalizedDetection {
            NormalizedDetection(xmin: x, ymin: 0, width: 1, height: 1, score: score, keypoints: [SIMD2(x, 0)])
        }
        // 0.0 and 0.1 overlap (IoU 0.82); 5.0 stands alone.
        let kept = DetectionDecoding.weightedSuppression([box(0.1, 0.25), box(5, 0.5), box(0, 0.75)], threshold: 0.3)
        #expect(kept.count == 2)
        #expect(kept[0].score == 0.75 && kept[1].score == 0.5)
        // Mean of 0 (weight 0.75) and 0.1 (weight 0.25).
        #expect(abs(kept[0].xmin - 0.025) < 1e-6 && abs(kept[0].width - 1) < 1e-6)
        #expect(abs(kept[0].keypoints[0].x - 0.025) < 1e-6)
        #expect(kept[1].xmin == 5)
        // Below the threshold nothing merges.
        #expect(DetectionDecoding.weightedSuppression([box(0, 0.9), box(0.9, 0.8)], threshold: 0.3).count == 2)
    }
}
