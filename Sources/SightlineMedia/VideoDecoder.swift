import CFFmpeg
import SightlineCore

/// Which frames the codec decodes at all. Skipped frames cost only demuxing.
public enum DecodeMode: String, Sendable, CaseIterable, Codable {
    /// Every frame.
    case all
    /// Keyframes only (AVDISCARD_NONKEY): other frames are never decoded.
    case keyframes
    /// Skip frames no other frame references (AVDISCARD_NONREF), e.g. non-reference B-frames.
    case nonref
    /// Under N-per-second sampling, skip the packets after the last kept frame before the next
    /// keyframe, once keyframes come at a steady interval (`SampledDecodePlanner`); with
    /// B-frames or irregular keyframes, every frame.
    case sampled
}

/// How carefully the codec reconstructs pictures. `fast` is for frames that only feed nodes
/// wanting small pictures (shot boundaries, frame statistics): the deblocking loop filter is
/// skipped (H.264, HEVC, VP8/9…), FFmpeg may take its non-bit-exact shortcuts
/// (AV_CODEC_FLAG2_FAST), and codecs that can decode at a half, quarter or eighth of the size
/// do so when the output is at most that size (`lowres`: MPEG-1/2/4, MS-MPEG-4, MJPEG…; not
/// H.264). Pictures come out slightly blockier; frame count and timestamps do not change.
public enum DecodeQuality: String, Sendable, CaseIterable, Codable {
    case full, fast

    /// The largest lowres step k (the picture decoded at 1/2^k of each side) that still gives
    /// at least `output` pixels on both sides, capped by what the codec supports. 0 without an
    /// output size, or when the output is larger than half the source on either side.
    public static func lowres(sourceWidth: Int, sourceHeight: Int, output: (width: Int, height: Int)?, codecMax: Int) -> Int {
        guard let output, output.width > 0, output.height > 0, sourceWidth > 0, sourceHeight > 0 else { return 0 }
        var k = 0
        while k < codecMax, (sourceWidth >> (k + 1)) >= output.width, (sourceHeight >> (k + 1)) >= output.height { k += 1 }
        return k
    }
}

/// Owns an opened AVCodecContext for one video stream.
final class VideoDecoder {
    let context: UnsafeMutablePointer<AVCodecContext>
    let codecName: String
    /// The lowres step in effect (0: full size); see `DecodeQuality`.
    let lowres: Int

    /// - Parameters:
    ///   - threads: decoder threads; 0 lets FFmpeg pick one per core.
    ///   - lowDelay: slice threading only, so no frames are held back for frame threading.
    ///   - quality: `fast` skips the loop filter and may decode at a reduced size (`lowres`);
    ///     `outputSize` (the size the pictures are scaled to, if known) bounds that reduction.
    init(stream: UnsafeMutablePointer<AVStream>, input: String, mode: DecodeMode, threads: Int, lowDelay: Bool,
         quality: DecodeQuality = .full, outputSize: (width: Int, height: Int)? = nil) throws {
        guard let parameters = stream.pointee.codecpar else {
            throw SightlineError.decoderFailed(input: input, reason: "stream has no codec parameters")
        }
        let codecID = parameters.pointee.codec_id
        let name = String(cString: avcodec_get_name(codecID))
        guard codecID != AV_CODEC_ID_NONE, let codec = avcodec_find_decoder(codecID) else {
            throw SightlineError.unsupportedCodec(input: input, codec: codecID == AV_CODEC_ID_NONE ? "unknown" : name)
        }
        guard let context = avcodec_alloc_context3(codec) else {
            throw SightlineError.decoderFailed(input: input, reason: "out of memory")
        }
        self.context = context
        self.codecName = name
        self.lowres = quality == .fast
            ? DecodeQuality.lowres(sourceWidth: Int(parameters.pointee.width), sourceHeight: Int(parameters.pointee.height),
                                   output: outputSize, codecMax: Int(codec.pointee.max_lowres))
            : 0

        var result = avcodec_parameters_to_context(context, parameters)
        guard result >= 0 else {
            throw SightlineError.decoderFailed(input: input, reason: ffmpegErrorString(result))
        }
        context.pointee.pkt_timebase = stream.pointee.time_base
        context.pointee.thread_count = Int32(max(threads, 0))
        context.pointee.thread_type = lowDelay ? FF_THREAD_SLICE : (FF_THREAD_FRAME | FF_THREAD_SLICE)
        if lowDelay { context.pointee.flags |= Int32(AV_CODEC_FLAG_LOW_DELAY) }
        switch mode {
        case .all, .sampled: context.pointee.skip_frame = AVDISCARD_DEFAULT
        case .keyframes: context.pointee.skip_frame = AVDISCARD_NONKEY
        case .nonref: context.pointee.skip_frame = AVDISCARD_NONREF
        }
        if quality == .fast {
            context.pointee.skip_loop_filter = AVDISCARD_ALL
            context.pointee.flags2 |= Int32(AV_CODEC_FLAG2_FAST)
            context.pointee.lowres = Int32(lowres)
        }
        result = avcodec_open2(context, codec, nil)
        guard result >= 0 else {
            throw SightlineError.decoderFailed(input: input, reason: "cannot open \(name) decoder: \(ffmpegErrorString(result))")
        }
    }

    deinit {
        var doomed: UnsafeMutablePointer<AVCodecContext>? = context
        avcodec_free_context(&doomed)
    }

    /// Sends one packet (nil flushes). Returns FFmpeg's result code.
    func send(_ packet: UnsafeMutablePointer<AVPacket>?) -> Int32 {
        avcodec_send_packet(context, packet)
    }

    /// Receives one frame into `frame`. Returns FFmpeg's result code (EAGAIN / EOF when none).
    func receive(into frame: DecodedFrameBuffer) -> Int32 {
        avcodec_receive_frame(context, frame.pointer)
    }
}
