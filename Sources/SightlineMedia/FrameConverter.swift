import CFFmpeg
import SightlineCore

/// How a frame is fitted to a requested output size.
public enum ResizeMode: String, Sendable, CaseIterable, Codable {
    /// Scale to exactly the requested size; aspect ratio may change.
    case stretch
    /// Keep aspect ratio, fit inside, pad the rest with black.
    case letterbox
    /// Keep aspect ratio, cover the whole output, cut the overflow evenly on both sides.
    case crop
}

/// What converted frames look like. A nil width/height keeps the source size.
public struct OutputFormat: Sendable, Equatable {
    public var width: Int?
    public var height: Int?
    public var pixelFormat: PixelFormat
    public var resize: ResizeMode

    public init(width: Int? = nil, height: Int? = nil, pixelFormat: PixelFormat = .rgb24, resize: ResizeMode = .stretch) {
        self.width = width
        self.height = height
        self.pixelFormat = pixelFormat
        self.resize = resize
    }

    /// Output size for a source of `sourceWidth`×`sourceHeight`. With one side given, the
    /// other follows the source aspect ratio.
    func size(sourceWidth: Int, sourceHeight: Int) -> (width: Int, height: Int) {
        switch (width, height) {
        case let (w?, h?): return (w, h)
        case let (w?, nil): return (w, max(1, Int((Double(w) * Double(sourceHeight) / Double(sourceWidth)).rounded())))
        case let (nil, h?): return (max(1, Int((Double(h) * Double(sourceWidth) / Double(sourceHeight)).rounded())), h)
        case (nil, nil): return (sourceWidth, sourceHeight)
        }
    }
}

/// The rectangle a fitted image occupies, and the size it is scaled to first.
struct ResizePlan: Equatable {
    /// Size the source is scaled to.
    var scaledWidth: Int
    var scaledHeight: Int
    /// Where the scaled image's top-left lands in the output (letterbox: ≥ 0; crop: ≤ 0).
    var offsetX: Int
    var offsetY: Int

    static func make(mode: ResizeMode, sourceWidth sw: Int, sourceHeight sh: Int, outputWidth ow: Int, outputHeight oh: Int) -> ResizePlan {
        switch mode {
        case .stretch:
            return ResizePlan(scaledWidth: ow, scaledHeight: oh, offsetX: 0, offsetY: 0)
        case .letterbox, .crop:
            let sx = Double(ow) / Double(sw)
            let sy = Double(oh) / Double(sh)
            let scale = mode == .letterbox ? min(sx, sy) : max(sx, sy)
            // The side that matches exactly is set exactly, so rounding never leaves a 1-px seam.
            let w = (mode == .letterbox ? sx <= sy : sx >= sy) ? ow : max(1, Int((Double(sw) * scale).rounded()))
            let h = (mode == .letterbox ? sx <= sy : sx >= sy) ? max(1, Int((Double(sh) * scale).rounded())) : oh
            return ResizePlan(scaledWidth: w, scaledHeight: h, offsetX: (ow - w) / 2, offsetY: (oh - h) / 2)
        }
    }
}

/// Converts decoded frames (any pixel format FFmpeg decodes to) into packed RGB/BGR/gray at the
/// requested size with swscale. Keeps one cached SwsContext; it is rebuilt only when the input
/// size or format changes mid-stream.
final class FrameConverter {
    private var context: OpaquePointer?
    private var scratch: [UInt8] = []
    let output: OutputFormat

    init(output: OutputFormat) {
        self.output = output
    }

    deinit { sws_freeContext(context) }

    func convert(_ frame: UnsafeMutablePointer<AVFrame>) throws -> (pixels: [UInt8], width: Int, height: Int) {
        let sw = Int(frame.pointee.width)
        let sh = Int(frame.pointee.height)
        guard sw > 0, sh > 0 else {
            throw SightlineError.decoderFailed(input: "", reason: "decoded frame has no size")
        }
        let (ow, oh) = output.size(sourceWidth: sw, sourceHeight: sh)
        let plan = ResizePlan.make(mode: output.resize, sourceWidth: sw, sourceHeight: sh, outputWidth: ow, outputHeight: oh)
        let bpp = output.pixelFormat.bytesPerPixel
        let dstFormat: AVPixelFormat = switch output.pixelFormat {
        case .rgb24: AV_PIX_FMT_RGB24
        case .bgr24: AV_PIX_FMT_BGR24
        case .gray8: AV_PIX_FMT_GRAY8
        }
        context = sws_getCachedContext(
            context, Int32(sw), Int32(sh), AVPixelFormat(frame.pointee.format),
            Int32(plan.scaledWidth), Int32(plan.scaledHeight), dstFormat,
            SWS_BILINEAR, nil, nil, nil)
        guard let context else {
            throw SightlineError.decoderFailed(input: "", reason: "swscale cannot convert \(sw)x\(sh) pixel format \(frame.pointee.format)")
        }

        var pixels = [UInt8](repeating: 0, count: ow * oh * bpp)
        if plan.offsetX >= 0 && plan.offsetY >= 0 {
            // Stretch or letterbox: scale straight into the output, inside the padded rectangle.
            let offset = (plan.offsetY * ow + plan.offsetX) * bpp
            pixels.withUnsafeMutableBufferPointer { out in
                scale(context, frame, into: out.baseAddress! + offset, stride: ow * bpp)
            }
        } else {
            // Crop: scale to cover, then copy the centred window. Cropping the source planes
            // instead would need per-format chroma alignment; this costs one small copy.
            let rowBytes = plan.scaledWidth * bpp
            if scratch.count < rowBytes * plan.scaledHeight { scratch = [UInt8](repeating: 0, count: rowBytes * plan.scaledHeight) }
            scratch.withUnsafeMutableBufferPointer { tmp in
                scale(context, frame, into: tmp.baseAddress!, stride: rowBytes)
            }
            let x0 = -plan.offsetX
            let y0 = -plan.offsetY
            scratch.withUnsafeBufferPointer { tmp in
                pixels.withUnsafeMutableBufferPointer { out in
                    for y in 0..<oh {
                        let src = tmp.baseAddress! + (y + y0) * rowBytes + x0 * bpp
                        (out.baseAddress! + y * ow * bpp).update(from: src, count: ow * bpp)
                    }
                }
            }
        }
        return (pixels, ow, oh)
    }

    private func scale(_ context: OpaquePointer, _ frame: UnsafeMutablePointer<AVFrame>, into destination: UnsafeMutablePointer<UInt8>, stride: Int) {
        var dstData: [UnsafeMutablePointer<UInt8>?] = [destination, nil, nil, nil]
        var dstStride: [Int32] = [Int32(stride), 0, 0, 0]
        withUnsafePointer(to: &frame.pointee.data) { dataTuple in
            withUnsafePointer(to: &frame.pointee.linesize) { strideTuple in
                dataTuple.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { srcData in
                    strideTuple.withMemoryRebound(to: Int32.self, capacity: 8) { srcStride in
                        _ = sws_scale(context, srcData, srcStride, 0, frame.pointee.height, &dstData, &dstStride)
                    }
                }
            }
        }
    }
}
