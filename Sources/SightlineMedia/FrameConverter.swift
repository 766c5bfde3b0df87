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

        // swscale's x86 YUV → packed RGB paths write whole vectors: up to 45 bytes past the end
        // of a row whose width is not a multiple of their step (measured with a sentinel on
        // FFmpeg 5.1, widths 1–400; an 854-wide video is such a width). Inside a picture the
        // spill lands on the next row, which is written after it; the last row's lands in a
        // tail pad. So a full-frame stretch scales straight into the output plus a pad that is
        // cut off, and letterbox or crop scale into a padded scratch and copy the window (a
        // letterbox bar must stay black).
        let spill = 256
        if plan.offsetX == 0 && plan.offsetY == 0 && plan.scaledWidth == ow && plan.scaledHeight == oh {
            var pixels = [UInt8](repeating: 0, count: ow * oh * bpp + spill)
            pixels.withUnsafeMutableBufferPointer { out in
                scale(context, frame, into: out.baseAddress!, stride: ow * bpp)
            }
            pixels.removeLast(spill)
            return (pixels, ow, oh)
        }
        let rowBytes = plan.scaledWidth * bpp
        if scratch.count < rowBytes * plan.scaledHeight + spill { scratch = [UInt8](repeating: 0, count: rowBytes * plan.scaledHeight + spill) }
        scratch.withUnsafeMutableBufferPointer { tmp in
            scale(context, frame, into: tmp.baseAddress!, stride: rowBytes)
        }
        // The window both pictures share: from (x0, y0) of the scaled picture to (dx, dy) of the
        // output (letterbox: the offset is ≥ 0; crop: < 0).
        let x0 = max(0, -plan.offsetX), y0 = max(0, -plan.offsetY), dx = max(0, plan.offsetX), dy = max(0, plan.offsetY)
        let copyWidth = min(plan.scaledWidth - x0, ow - dx), copyHeight = min(plan.scaledHeight - y0, oh - dy)
        var pixels = [UInt8](repeating: 0, count: ow * oh * bpp)
        if copyWidth > 0 && copyHeight > 0 {
            scratch.withUnsafeBufferPointer { tmp in
                pixels.withUnsafeMutableBufferPointer { out in
                    for y in 0..<copyHeight {
                        (out.baseAddress! + ((y + dy) * ow + dx) * bpp).update(from: tmp.baseAddress! + (y + y0) * rowBytes + x0 * bpp, count: copyWidth * bpp)
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
