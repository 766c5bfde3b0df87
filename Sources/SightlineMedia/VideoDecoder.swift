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
}

/// Owns an opened AVCodecContext for one video stream.
final class VideoDecoder {
    let context: UnsafeMutablePointer<AVCodecContext>
    let codecName: String

    /// - Parameters:
    ///   - threads: decoder threads; 0 lets FFmpeg pick one per core.
    ///   - lowDelay: slice threading only, so no frames are held back for frame threading.
    init(stream: UnsafeMutablePointer<AVStream>, input: String, mode: DecodeMode, threads: Int, lowDelay: Bool) throws {
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

        var result = avcodec_parameters_to_context(context, parameters)
        guard result >= 0 else {
            throw SightlineError.decoderFailed(input: input, reason: ffmpegErrorString(result))
        }
        context.pointee.pkt_timebase = stream.pointee.time_base
        context.pointee.thread_count = Int32(max(threads, 0))
        context.pointee.thread_type = lowDelay ? FF_THREAD_SLICE : (FF_THREAD_FRAME | FF_THREAD_SLICE)
        if lowDelay { context.pointee.flags |= Int32(AV_CODEC_FLAG_LOW_DELAY) }
        switch mode {
        case .all: context.pointee.skip_frame = AVDISCARD_DEFAULT
        case .keyframes: context.pointee.skip_frame = AVDISCARD_NONKEY
        case .nonref: context.pointee.skip_frame = AVDISCARD_NONREF
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
