import CFFmpeg
import Foundation
import SightlineCore

/// JPEG bytes back to a packed frame, through libavcodec's MJPEG decoder (the counterpart of
/// `JPEGEncoder`; no image library for one format FFmpeg already reads). The bytes may come
/// off the network: the picture's size is checked against `maxPixels` before any pixel buffer
/// is made, and damaged data is an error, never a crash.
///
/// One decoder per owner (not Sendable): it keeps its codec and swscale contexts.
public final class JPEGDecoder {
    public let maxPixels: Int
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var toPacked: OpaquePointer?

    public init(maxPixels: Int = 8192 * 8192) {
        self.maxPixels = max(1, maxPixels)
    }

    deinit {
        avcodec_free_context(&context)
        av_frame_free(&frame)
        av_packet_free(&packet)
        sws_freeContext(toPacked)
    }

    private func open() throws {
        guard context == nil else { return }
        guard let codec = avcodec_find_decoder(AV_CODEC_ID_MJPEG) else {
            throw SightlineError.decoderFailed(input: "jpeg", reason: "this FFmpeg has no MJPEG decoder")
        }
        context = avcodec_alloc_context3(codec)
        frame = av_frame_alloc()
        packet = av_packet_alloc()
        guard let context, frame != nil, packet != nil else { throw SightlineError.decoderFailed(input: "jpeg", reason: "out of memory") }
        let status = avcodec_open2(context, codec, nil)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "open the MJPEG decoder") }
    }

    /// The picture in `bytes`, converted to `format`.
    public func decode(_ bytes: some DataProtocol, format: PixelFormat) throws -> (pixels: [UInt8], width: Int, height: Int) {
        try open()
        guard let context, let frame, let packet else { throw SightlineError.decoderFailed(input: "jpeg", reason: "decoder not open") }
        guard bytes.count > 0, bytes.count < Int(Int32.max) - 64 else {
            throw SightlineError.decoderFailed(input: "jpeg", reason: "\(bytes.count) bytes is not a JPEG picture")
        }
        var status = av_new_packet(packet, Int32(bytes.count))
        guard status >= 0, let data = packet.pointee.data else { throw FFmpegError(code: status, operation: "allocate a JPEG packet") }
        defer { av_packet_unref(packet) }
        _ = UnsafeMutableBufferPointer(start: data, count: bytes.count).initialize(from: bytes)
        // Each picture is whole: the decoder keeps nothing from the one before.
        avcodec_flush_buffers(context)
        status = avcodec_send_packet(context, packet)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "decode a JPEG picture") }
        status = avcodec_receive_frame(context, frame)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "decode a JPEG picture") }
        defer { av_frame_unref(frame) }
        let width = Int(frame.pointee.width), height = Int(frame.pointee.height)
        guard width > 0, height > 0, width <= 16384, height <= 16384, width * height <= maxPixels else {
            throw SightlineError.decoderFailed(input: "jpeg", reason: "a \(width)x\(height) picture is outside the allowed size (at most \(maxPixels) pixels)")
        }
        let source = AVPixelFormat(rawValue: frame.pointee.format)
        toPacked = sws_getCachedContext(toPacked, Int32(width), Int32(height), source, Int32(width), Int32(height), JPEGEncoder.avFormat(format),
                                        SWS_BILINEAR, nil, nil, nil)
        guard let toPacked else { throw SightlineError.decoderFailed(input: "jpeg", reason: "swscale cannot convert the \(width)x\(height) picture") }
        // swscale's SIMD paths write whole vectors, past the end of a row whose width is not a
        // multiple of their step (found by the link fuzzer: a 3-pixel-wide picture corrupted
        // the heap). So it writes into a frame FFmpeg allocates with padded rows, and the rows
        // are copied out tight.
        var packed = av_frame_alloc()
        defer { av_frame_free(&packed) }
        guard let packed else { throw SightlineError.decoderFailed(input: "jpeg", reason: "out of memory") }
        packed.pointee.width = Int32(width)
        packed.pointee.height = Int32(height)
        packed.pointee.format = JPEGEncoder.avFormat(format).rawValue
        let allocated = av_frame_get_buffer(packed, 64)
        guard allocated >= 0, let destination = packed.pointee.data.0 else { throw FFmpegError(code: allocated, operation: "allocate a picture") }
        let stride = Int(packed.pointee.linesize.0), rowBytes = width * format.bytesPerPixel
        withUnsafePointer(to: &frame.pointee.data) { dataTuple in
            withUnsafePointer(to: &frame.pointee.linesize) { strideTuple in
                dataTuple.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { srcData in
                    strideTuple.withMemoryRebound(to: Int32.self, capacity: 8) { srcStride in
                        var dstData: [UnsafeMutablePointer<UInt8>?] = [destination, nil, nil, nil]
                        var dstStride: [Int32] = [Int32(stride), 0, 0, 0]
                        _ = sws_scale(toPacked, srcData, srcStride, 0, Int32(height), &dstData, &dstStride)
                    }
                }
            }
        }
        var pixels = [UInt8](repeating: 0, count: rowBytes * height)
        pixels.withUnsafeMutableBufferPointer { out in
            guard let base = out.baseAddress else { return }
            for row in 0..<height { (base + row * rowBytes).update(from: destination + row * stride, count: rowBytes) }
        }
        return (pixels, width, height)
    }
}
