import Foundation
import SightlineCore
import SightlineInference

/// One detection in normalized image coordinates (0…1 across the whole frame, y down): its
/// box, its score, and the model's keypoints.
public struct NormalizedDetection: Sendable, Equatable {
    public var xmin: Float
    public var ymin: Float
    public var width: Float
    public var height: Float
    public var score: Float
    public var keypoints: [SIMD2<Float>]

    public init(xmin: Float, ymin: Float, width: Float, height: Float, score: Float, keypoints: [SIMD2<Float>]) {
        self.xmin = xmin
        self.ymin = ymin
        self.width = width
        self.height = height
        self.score = score
        self.keypoints = keypoints
    }

    /// This detection, made on `crop` (pixels of the frame), in the whole frame's normalized
    /// coordinates.
    public func fromCrop(_ crop: PixelBox, frameWidth: Int, frameHeight: Int) -> NormalizedDetection {
        let sx = Float(crop.width / Double(frameWidth)), sy = Float(crop.height / Double(frameHeight))
        let ox = Float(crop.x / Double(frameWidth)), oy = Float(crop.y / Double(frameHeight))
        return NormalizedDetection(xmin: ox + xmin * sx, ymin: oy + ymin * sy, width: self.width * sx, height: self.height * sy, score: score,
                                   keypoints: keypoints.map { SIMD2(ox + $0.x * sx, oy + $0.y * sy) })
    }

    /// Intersection over union with another box (0 when either is empty).
    public func iou(_ other: NormalizedDetection) -> Float {
        let x0 = max(xmin, other.xmin), y0 = max(ymin, other.ymin)
        let x1 = min(xmin + width, other.xmin + other.width), y1 = min(ymin + height, other.ymin + other.height)
        let intersection = max(0, x1 - x0) * max(0, y1 - y0)
        let union = width * height + other.width * other.height - intersection
        return union > 0 ? intersection / union : 0
    }
}

/// MediaPipe's SSD anchors (its `SsdAnchorsCalculator`): for each layer a grid of
/// ceil(input / stride) cells, each with one anchor per aspect ratio (plus one at the
/// interpolated scale); consecutive layers of the same stride share a grid.
public struct SSDAnchorOptions: Sendable, Equatable {
    public var inputWidth: Int
    public var inputHeight: Int
    public var minScale: Float
    public var maxScale: Float
    public var offset: Float = 0.5
    public var strides: [Int]
    public var aspectRatios: [Float] = [1]
    /// 0: no anchor at the interpolated scale.
    public var interpolatedScaleAspectRatio: Float = 1
    /// Anchors of size 1×1 (the model's box outputs are then absolute sizes).
    public var fixedAnchorSize = true

    public init(inputWidth: Int, inputHeight: Int, minScale: Float, maxScale: Float, strides: [Int], interpolatedScaleAspectRatio: Float = 1) {
        self.inputWidth = inputWidth
        self.inputHeight = inputHeight
        self.minScale = minScale
        self.maxScale = maxScale
        self.strides = strides
        self.interpolatedScaleAspectRatio = interpolatedScaleAspectRatio
    }

    public struct Anchor: Sendable, Equatable {
        public var x: Float, y: Float, width: Float, height: Float
    }

    func scale(_ index: Int) -> Float {
        strides.count == 1 ? (minScale + maxScale) / 2 : minScale + (maxScale - minScale) * Float(index) / Float(strides.count - 1)
    }

    public func anchors() -> [Anchor] {
        var anchors: [Anchor] = []
        var layer = 0
        while layer < strides.count {
            var sizes: [(width: Float, height: Float)] = []
            var last = layer
            while last < strides.count && strides[last] == strides[layer] {
                let scale = self.scale(last)
                for ratio in aspectRatios { sizes.append((scale * ratio.squareRoot(), scale / ratio.squareRoot())) }
                if interpolatedScaleAspectRatio > 0 {
                    let next = last == strides.count - 1 ? 1 : self.scale(last + 1)
                    let interpolated = (scale * next).squareRoot(), ratio = interpolatedScaleAspectRatio.squareRoot()
                    sizes.append((interpolated * ratio, interpolated / ratio))
                }
                last += 1
            }
            let stride = strides[layer]
            let rows = (inputHeight + stride - 1) / stride, columns = (inputWidth + stride - 1) / stride
            for y in 0..<rows {
                for x in 0..<columns {
                    for size in sizes {
                        anchors.append(Anchor(x: (Float(x) + offset) / Float(columns), y: (Float(y) + offset) / Float(rows),
                                              width: fixedAnchorSize ? 1 : size.width, height: fixedAnchorSize ? 1 : size.height))
                    }
                }
            }
            layer = last
        }
        return anchors
    }
}

/// How a BlazeFace-style model's raw outputs become detections (MediaPipe's
/// `TensorsToDetectionsCalculator` with `reverse_output_order`: x before y) and how they are
/// merged (`NonMaxSuppressionCalculator`, weighted).
public struct DetectionDecoding: Sendable, Equatable {
    /// Values per anchor in the box tensor: 4 box values, then keypoints (x, y).
    public var coordinates: Int
    public var keypoints: Int
    /// The input size the raw values are in (pixels of the model input).
    public var scale: Float
    public var minScore: Float
    public var scoreClipping: Float = 100
    public var suppressionThreshold: Float = 0.3

    public init(coordinates: Int, keypoints: Int, scale: Float, minScore: Float) {
        self.coordinates = coordinates
        self.keypoints = keypoints
        self.scale = scale
        self.minScore = minScore
    }

    /// Detections above `minScore`, in the model input's normalized coordinates.
    public func decode(boxes: [Float], scores: [Float], anchors: [SSDAnchorOptions.Anchor]) -> [NormalizedDetection] {
        var found: [NormalizedDetection] = []
        guard boxes.count >= anchors.count * coordinates, scores.count >= anchors.count else { return [] }
        for (i, anchor) in anchors.enumerated() {
            let raw = min(max(scores[i], -scoreClipping), scoreClipping)
            let score = 1 / (1 + Foundation.exp(-raw))
            guard score >= minScore else { continue }
            let b = i * coordinates
            let cx = boxes[b] / scale * anchor.width + anchor.x
            let cy = boxes[b + 1] / scale * anchor.height + anchor.y
            let w = boxes[b + 2] / scale * anchor.width
            let h = boxes[b + 3] / scale * anchor.height
            let points = (0..<keypoints).map { k in
                SIMD2(boxes[b + 4 + 2 * k] / scale * anchor.width + anchor.x, boxes[b + 5 + 2 * k] / scale * anchor.height + anchor.y)
            }
            found.append(NormalizedDetection(xmin: cx - w / 2, ymin: cy - h / 2, width: w, height: h, score: score, keypoints: points))
        }
        return Self.weightedSuppression(found, threshold: suppressionThreshold)
    }

    /// Weighted non-maximum suppression: the best remaining detection takes every detection
    /// overlapping it by more than `threshold` (itself included), and its box and keypoints
    /// become their score-weighted mean; its score stays its own.
    public static func weightedSuppression(_ detections: [NormalizedDetection], threshold: Float) -> [NormalizedDetection] {
        var remaining = detections.enumerated().sorted { ($0.element.score, -$0.offset) > ($1.element.score, -$1.offset) }.map(\.element)
        var kept: [NormalizedDetection] = []
        while let best = remaining.first {
            var candidates: [NormalizedDetection] = []
            var rest: [NormalizedDetection] = []
            for detection in remaining {
                if best.iou(detection) > threshold { candidates.append(detection) } else { rest.append(detection) }
            }
            var merged = best
            let total = candidates.reduce(Float(0)) { $0 + $1.score }
            if total > 0 {
                var x0: Float = 0, y0: Float = 0, x1: Float = 0, y1: Float = 0
                var points = [SIMD2<Float>](repeating: .zero, count: best.keypoints.count)
                for c in candidates {
                    x0 += c.xmin * c.score
                    y0 += c.ymin * c.score
                    x1 += (c.xmin + c.width) * c.score
                    y1 += (c.ymin + c.height) * c.score
                    for k in points.indices where k < c.keypoints.count { points[k] += c.keypoints[k] * c.score }
                }
                merged.xmin = x0 / total
                merged.ymin = y0 / total
                merged.width = (x1 - x0) / total
                merged.height = (y1 - y0) / total
                merged.keypoints = points.map { $0 / total }
            }
            kept.append(merged)
            remaining = rest
        }
        return kept
    }
}

/// A MediaPipe BlazeFace-family detector on our engine: the frame letterboxed into the model's
/// square input (RGB in [−1, 1], black borders), the model run, the outputs decoded and merged,
/// and the detections mapped back to the whole frame. The letterbox samples as MediaPipe's
/// ImageToTensorCalculator does through OpenCV's warpPerspective: output pixel (x, y) reads the
/// frame at the square's corner + (x, y) · side / size, bilinearly with positions quantized to
/// 1/32 pixel, and the result is rounded to 8 bits before it is scaled to [−1, 1]. Sampling
/// pixel centres instead moved a 640×272 frame's samples by 2 px and a weak face appeared that
/// MediaPipe does not report.
public final class BlazeDetector: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var inputSize: Int
        public var anchors: SSDAnchorOptions
        public var decoding: DetectionDecoding
        /// Output names of the box and score tensors.
        public var boxesOutput: String
        public var scoresOutput: String
    }

    public let model: InferenceModel
    public let configuration: Configuration
    private let anchors: [SSDAnchorOptions.Anchor]

    public init(model: InferenceModel, configuration: Configuration) throws {
        self.model = model
        self.configuration = configuration
        anchors = configuration.anchors.anchors()
    }

    /// The letterboxed input [1, S, S, 3] and where the frame sits in it (normalized).
    public func input(_ frame: Frame) -> (tensor: Tensor, left: Float, top: Float, scaleX: Float, scaleY: Float) {
        let s = configuration.inputSize
        let (w, h) = (frame.width, frame.height)
        let side = Float(max(w, h))
        // The square the model sees, in frame pixels: the frame centred in it.
        let originX = (Float(w) - side) / 2, originY = (Float(h) - side) / 2
        let step = side / Float(s)
        let bpp = frame.pixelFormat.bytesPerPixel
        var data = [Float](repeating: -1, count: s * s * 3)
        // Columns' source positions and weights, computed once per frame, not per pixel (the
        // per-pixel version spent more time here than the face model itself at 720p). A tap the
        // bilinear formula skips (zero weight, or outside the frame) reads a valid pixel with
        // weight 0 instead: adding +0 leaves a sum of non-negative terms unchanged, so the bytes
        // are the formula's (BlazeInputTests) while the inner loop has no branches. Rows with no
        // tap inside the frame (the letterbox bars) keep the -1 they start with, as the formula
        // gives them.
        let (r, g, b): (Int, Int, Int) = bpp == 1 ? (0, 0, 0) : frame.pixelFormat == .bgr24 ? (2, 1, 0) : (0, 1, 2)
        struct ColumnTaps { var offset0: Int; var offset1: Int; var weight0: Float; var weight1: Float }
        let columns = (0..<s).map { x -> ColumnTaps in
            let (x0, fx) = Self.quantized(Float(x) * step + originX)
            let inside0 = x0 >= 0 && x0 < w, inside1 = fx > 0 && x0 + 1 >= 0 && x0 + 1 < w
            return ColumnTaps(offset0: (inside0 ? x0 : 0) * bpp, offset1: (inside1 ? x0 + 1 : 0) * bpp,
                              weight0: inside0 ? 1 - fx : 0, weight1: inside1 ? fx : 0)
        }
        frame.pixels.withUnsafeBufferPointer { px in
            columns.withUnsafeBufferPointer { taps in
                data.withUnsafeMutableBufferPointer { out in
                    for y in 0..<s {
                        let (y0, fy) = Self.quantized(Float(y) * step + originY)
                        let insideA = y0 >= 0 && y0 < h, insideB = fy > 0 && y0 + 1 >= 0 && y0 + 1 < h
                        guard insideA || insideB else { continue }
                        // Row A (weight 1 - fy, never zero) and row B (weight fy), in that order.
                        let rowA = (insideA ? y0 : 0) * w * bpp, wyA: Float = insideA ? 1 - fy : 0
                        let rowB = (insideB ? y0 + 1 : 0) * w * bpp, wyB: Float = insideB ? fy : 0
                        for x in 0..<s {
                            let c = taps[x]
                            let (a0, a1, b0, b1) = (wyA * c.weight0, wyA * c.weight1, wyB * c.weight0, wyB * c.weight1)
                            var red: Float = 0, green: Float = 0, blue: Float = 0
                            @inline(__always) func tap(_ o: Int, _ weight: Float) {
                                red += Float(px[o + r]) * weight
                                green += Float(px[o + g]) * weight
                                blue += Float(px[o + b]) * weight
                            }
                            tap(rowA + c.offset0, a0)
                            tap(rowA + c.offset1, a1)
                            tap(rowB + c.offset0, b0)
                            tap(rowB + c.offset1, b1)
                            let i = (y * s + x) * 3
                            out[i] = red.rounded(.toNearestOrEven) / 127.5 - 1
                            out[i + 1] = green.rounded(.toNearestOrEven) / 127.5 - 1
                            out[i + 2] = blue.rounded(.toNearestOrEven) / 127.5 - 1
                        }
                    }
                }
            }
        }
        return (Tensor(shape: [1, s, s, 3], data: data), -originX / side, -originY / side, side / Float(w), side / Float(h))
    }

    /// A source position as OpenCV's remap takes it: the whole pixel and the fraction in 1/32.
    static func quantized(_ position: Float) -> (Int, Float) {
        let steps = Int((position * 32).rounded(.toNearestOrEven))
        let whole = steps >> 5  // floor division by 32, negative positions included
        return (whole, Float(steps - whole * 32) / 32)
    }

    /// Detections in the frame's normalized coordinates, best first.
    public func detect(_ frame: Frame) throws -> [NormalizedDetection] {
        let (tensor, left, top, scaleX, scaleY) = input(frame)
        let outputs = try model.run(tensor)
        guard let boxes = outputs[configuration.boxesOutput], let scores = outputs[configuration.scoresOutput] else {
            throw ModelError.missing("detector outputs '\(configuration.boxesOutput)' and '\(configuration.scoresOutput)'")
        }
        let found = configuration.decoding.decode(boxes: boxes.data, scores: scores.data, anchors: anchors)
        // From the square the model saw back to the frame: x_frame = (x − left) · side / width.
        return found.map { d in
            var m = d
            m.xmin = (d.xmin - left) * scaleX
            m.ymin = (d.ymin - top) * scaleY
            m.width = d.width * scaleX
            m.height = d.height * scaleY
            m.keypoints = d.keypoints.map { SIMD2(($0.x - left) * scaleX, ($0.y - top) * scaleY) }
            return m
        }
    }
}
