import Testing
import SightlineCore
import SightlineInference
@testable import SightlineModels

/// The detectors' letterboxed input (fast: column positions computed once) against the plain
/// per-pixel bilinear formula it replaced, byte for byte, on frames of odd sizes and formats.
@Suite struct BlazeInputTests {
    /// The reference: every output pixel reads its four neighbours, skipping zero weights and
    /// pixels outside the frame, summed in the order (0,0), (0,1), (1,0), (1,1).
    static func reference(_ frame: Frame, size s: Int) -> [Float] {
        let (w, h) = (frame.width, frame.height)
        let side = Float(max(w, h))
        let originX = (Float(w) - side) / 2, originY = (Float(h) - side) / 2
        let step = side / Float(s)
        let bpp = frame.pixelFormat.bytesPerPixel
        let (r, g, b): (Int, Int, Int) = frame.pixelFormat == .bgr24 ? (2, 1, 0) : (0, 1, 2)
        var data = [Float](repeating: -1, count: s * s * 3)
        for y in 0..<s {
            let (y0, fy) = BlazeDetector.quantized(Float(y) * step + originY)
            for x in 0..<s {
                let (x0, fx) = BlazeDetector.quantized(Float(x) * step + originX)
                var rgb: (Float, Float, Float) = (0, 0, 0)
                for (dy, wy) in [(0, 1 - fy), (1, fy)] where wy > 0 {
                    let yy = y0 + dy
                    guard yy >= 0, yy < h else { continue }
                    for (dx, wx) in [(0, 1 - fx), (1, fx)] where wx > 0 {
                        let xx = x0 + dx
                        guard xx >= 0, xx < w else { continue }
                        let o = (yy * w + xx) * bpp, weight = wy * wx
                        if bpp == 1 {
                            let v = Float(frame.pixels[o]) * weight
                            rgb = (rgb.0 + v, rgb.1 + v, rgb.2 + v)
                        } else {
                            rgb = (rgb.0 + Float(frame.pixels[o + r]) * weight, rgb.1 + Float(frame.pixels[o + g]) * weight,
                                   rgb.2 + Float(frame.pixels[o + b]) * weight)
                        }
                    }
                }
                let i = (y * s + x) * 3
                data[i] = rgb.0.rounded(.toNearestOrEven) / 127.5 - 1
                data[i + 1] = rgb.1.rounded(.toNearestOrEven) / 127.5 - 1
                data[i + 2] = rgb.2.rounded(.toNearestOrEven) / 127.5 - 1
            }
        }
        return data
    }

    /// Any model: only the input is looked at.
    static let model: InferenceModel = {
        let graph = IRGraph(nodes: [IRNode(op: "Relu", name: "r", inputs: ["x"], outputs: ["y"], attributes: [:])], constants: [:],
                            inputs: [.init(name: "x", dims: [1, 4])], outputs: ["y"], metadata: [:], opset: 13)
        return try! InferenceModel(graph: graph, threads: 1)
    }()

    static func frame(width: Int, height: Int, format: PixelFormat) -> Frame {
        var seed: UInt64 = UInt64(width * 31 + height)
        let pixels = (0..<(width * height * format.bytesPerPixel)).map { _ -> UInt8 in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: seed >> 56)
        }
        return Frame(sourceID: "s", decodeIndex: 0, timestamp: Timestamp(pts: 0, timeBase: Rational(1, 25)), seconds: 0, ingestWallClock: 0,
                     isKeyframe: true, width: width, height: height, pixelFormat: format, pixels: pixels)
    }

    @Test(arguments: [(1280, 720, PixelFormat.rgb24), (641, 273, .bgr24), (100, 300, .gray8), (128, 128, .rgb24), (37, 19, .rgb24)])
    func fastEqualsReference(width: Int, height: Int, format: PixelFormat) throws {
        let frame = Self.frame(width: width, height: height, format: format)
        for size in [128, 192, 224] {
            var configuration = MediaPipeDetectors.Graph.faceShort.configuration
            configuration.inputSize = size
            let detector = try BlazeDetector(model: Self.model, configuration: configuration)
            #expect(detector.input(frame).tensor.data == Self.reference(frame, size: size), "\(width)x\(height) \(format) → \(size)")
        }
    }
}
