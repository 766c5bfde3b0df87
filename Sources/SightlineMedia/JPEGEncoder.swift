import CFFmpeg
import Foundation
import SightlineCore

/// Small JPEG stills (shot thumbnails) through libavcodec's MJPEG encoder, so no image library
/// is added for one format FFmpeg already writes. Packed RGB/BGR/gray frames are scaled down to
/// at most `maxWidth` (aspect kept) and converted to full-range YUV 4:2:0 by swscale.
///
/// One encoder per owner (not Sendable): it keeps its swscale contexts between calls.
public final class JPEGEncoder {
    public let maxWidth: Int
    /// MJPEG quantiser scale, 2 (best) to 31; 4 gives clear thumbnails of a few kB.
    public let qscale: Int
    private var toYUV: OpaquePointer?
    private var toSmall: OpaquePointer?

    public init(maxWidth: Int = 320, qscale: Int = 4) {
        self.maxWidth = max(16, maxWidth)
        self.qscale = min(31, max(2, qscale))
    }

    deinit {
        sws_freeContext(toYUV)
        sws_freeContext(toSmall)
    }

    /// The size a `width`×`height` image is scaled to: at most `maxWidth` wide, even sides
    /// (4:2:0 chroma), aspect kept.
    public func thumbnailSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let w = min(width, maxWidth)
        let h = max(2, Int((Double(height) * Double(w) / Double(max(1, width))).rounded()))
        return (max(2, w & ~1), max(2, h & ~1))
    }

    /// A packed frame scaled down to thumbnail size, still packed in the same format: what an
    /// owner keeps in memory until it knows which frame to encode.
    public func downscale(_ pixels: [UInt8], width: Int, height: Int, format: PixelFormat) throws -> (pixels: [UInt8], width: Int, height: Int) {
        try check(pixels, width: width, height: height, format: format)
        let (ow, oh) = thumbnailSize(width: width, height: height)
        let av = Self.avFormat(format)
        toSmall = sws_getCachedContext(toSmall, Int32(width), Int32(height), av, Int32(ow), Int32(oh), av, SWS_AREA, nil, nil, nil)
        guard let toSmall else { throw SightlineError.decoderFailed(input: "thumbnail", reason: "swscale cannot scale \(width)x\(height)") }
        // A tail pad for swscale's whole-vector stores past a row's end (see FrameConverter).
        var out = [UInt8](repeating: 0, count: ow * oh * format.bytesPerPixel + 256)
        let (padded, paddedStride) = Self.paddedRows(pixels, width: width, height: height, format: format)
        padded.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var srcData: [UnsafePointer<UInt8>?] = [src.baseAddress, nil, nil, nil]
                var srcStride: [Int32] = [Int32(paddedStride), 0, 0, 0]
                var dstData: [UnsafeMutablePointer<UInt8>?] = [dst.baseAddress, nil, nil, nil]
                var dstStride: [Int32] = [Int32(ow * format.bytesPerPixel), 0, 0, 0]
                _ = sws_scale(toSmall, &srcData, &srcStride, 0, Int32(height), &dstData, &dstStride)
            }
        }
        out.removeLast(256)
        return (out, ow, oh)
    }

    /// The JPEG bytes of a packed frame, scaled to thumbnail size.
    public func encode(_ pixels: [UInt8], width: Int, height: Int, format: PixelFormat) throws -> Data {
        try check(pixels, width: width, height: height, format: format)
        let (ow, oh) = thumbnailSize(width: width, height: height)
        return try encode(pixels, width: width, height: height, format: format, outputWidth: ow, outputHeight: oh)
    }

    /// The JPEG bytes of a packed image at its own size, odd sides included (an edge link's
    /// tiles are pasted back pixel for pixel); `maxWidth` does not apply.
    public func encodeFullSize(_ pixels: [UInt8], width: Int, height: Int, format: PixelFormat) throws -> Data {
        try check(pixels, width: width, height: height, format: format)
        return try encode(pixels, width: width, height: height, format: format, outputWidth: width, outputHeight: height)
    }

    private func encode(_ pixels: [UInt8], width: Int, height: Int, format: PixelFormat, outputWidth ow: Int, outputHeight oh: Int) throws -> Data {
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG) else {
            throw SightlineError.decoderFailed(input: "thumbnail", reason: "this FFmpeg has no MJPEG encoder")
        }
        var context = avcodec_alloc_context3(codec)
        var frame = av_frame_alloc()
        var packet = av_packet_alloc()
        defer {
            avcodec_free_context(&context)
            av_frame_free(&frame)
            av_packet_free(&packet)
        }
        guard let context, let frame, let packet else { throw SightlineError.decoderFailed(input: "thumbnail", reason: "out of memory") }
        context.pointee.width = Int32(ow)
        context.pointee.height = Int32(oh)
        context.pointee.pix_fmt = AV_PIX_FMT_YUVJ420P
        context.pointee.time_base = AVRational(num: 1, den: 25)
        context.pointee.flags |= SL_AV_CODEC_FLAG_QSCALE
        context.pointee.global_quality = Int32(qscale) * SL_FF_QP2LAMBDA
        var status = avcodec_open2(context, codec, nil)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "open the MJPEG encoder") }

        frame.pointee.width = Int32(ow)
        frame.pointee.height = Int32(oh)
        frame.pointee.format = AV_PIX_FMT_YUVJ420P.rawValue
        frame.pointee.quality = context.pointee.global_quality
        status = av_frame_get_buffer(frame, 0)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "allocate a thumbnail frame") }

        toYUV = sws_getCachedContext(toYUV, Int32(width), Int32(height), Self.avFormat(format), Int32(ow), Int32(oh), AV_PIX_FMT_YUVJ420P,
                                     SWS_AREA, nil, nil, nil)
        guard let toYUV else { throw SightlineError.decoderFailed(input: "thumbnail", reason: "swscale cannot convert \(width)x\(height)") }
        let (padded, paddedStride) = Self.paddedRows(pixels, width: width, height: height, format: format)
        padded.withUnsafeBufferPointer { src in
            var srcData: [UnsafePointer<UInt8>?] = [src.baseAddress, nil, nil, nil]
            var srcStride: [Int32] = [Int32(paddedStride), 0, 0, 0]
            withUnsafeMutablePointer(to: &frame.pointee.data) { dataTuple in
                withUnsafeMutablePointer(to: &frame.pointee.linesize) { strideTuple in
                    dataTuple.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { dstData in
                        strideTuple.withMemoryRebound(to: Int32.self, capacity: 8) { dstStride in
                            _ = sws_scale(toYUV, &srcData, &srcStride, 0, Int32(height), dstData, dstStride)
                        }
                    }
                }
            }
        }
        status = avcodec_send_frame(context, frame)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "encode a thumbnail") }
        status = avcodec_send_frame(context, nil)
        var bytes = Data()
        while true {
            status = avcodec_receive_packet(context, packet)
            if status == SL_AVERROR_EOF || status == SL_AVERROR_EAGAIN { break }
            guard status >= 0 else { throw FFmpegError(code: status, operation: "encode a thumbnail") }
            if let data = packet.pointee.data, packet.pointee.size > 0 { bytes.append(data, count: Int(packet.pointee.size)) }
            av_packet_unref(packet)
        }
        guard !bytes.isEmpty else { throw SightlineError.decoderFailed(input: "thumbnail", reason: "the MJPEG encoder gave no bytes") }
        return bytes
    }

    /// The picture with each row padded by copies of its last pixel (and one spare row):
    /// swscale's RGB → YUV 4:2:0 readers take pixels in pairs and whole vectors, so on an odd
    /// width they read past a tight row's end (measured: the last column's colour came out as
    /// garbage that changed from run to run, and the last row's read ran off the buffer).
    static func paddedRows(_ pixels: [UInt8], width: Int, height: Int, format: PixelFormat) -> ([UInt8], Int) {
        let bpp = format.bytesPerPixel, rowBytes = width * bpp
        let rowStride = (rowBytes + 64 + 63) / 64 * 64
        var padded = [UInt8](repeating: 0, count: rowStride * (height + 1))
        padded.withUnsafeMutableBufferPointer { dst in
            pixels.withUnsafeBufferPointer { src in
                guard let to = dst.baseAddress, let from = src.baseAddress else { return }
                for y in 0...height {
                    let source = from + min(y, height - 1) * rowBytes, row = to + y * rowStride
                    row.update(from: source, count: rowBytes)
                    for x in stride(from: rowBytes, to: rowStride, by: bpp) where x + bpp <= rowStride {
                        (row + x).update(from: source + rowBytes - bpp, count: bpp)
                    }
                }
            }
        }
        return (padded, rowStride)
    }

    private func check(_ pixels: [UInt8], width: Int, height: Int, format: PixelFormat) throws {
        guard width >= 2, height >= 2, width <= 16384, height <= 16384, pixels.count >= width * height * format.bytesPerPixel else {
            throw SightlineError.decoderFailed(input: "thumbnail", reason: "a \(width)x\(height) \(format.rawValue) image needs \(width * height * format.bytesPerPixel) bytes, got \(pixels.count)")
        }
    }

    static func avFormat(_ format: PixelFormat) -> AVPixelFormat {
        switch format {
        case .rgb24: AV_PIX_FMT_RGB24
        case .bgr24: AV_PIX_FMT_BGR24
        case .gray8: AV_PIX_FMT_GRAY8
        }
    }
}
