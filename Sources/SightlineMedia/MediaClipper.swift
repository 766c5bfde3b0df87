import CFFmpeg
import Foundation
import SightlineCore

/// Cuts a time span out of a media file (`sightline clip`).
///
/// Without re-encoding, packets are copied from the keyframe at or before `from`, so the clip
/// may begin a little early (never late: the span asked for is all there). With `reencode`,
/// video is decoded from that keyframe and encoded from the first frame at or after `from` to
/// the last before `to` (libx264, else MPEG-4 Part 2), so it is frame-exact; audio packets are
/// copied for the same span (to within one audio packet, ~20 ms).
public enum MediaClipper {
    public struct Result: Sendable, Equatable {
        /// The media time of the clip's first video frame, and of its end.
        public var start: Double
        public var end: Double
        public var videoFrames: Int
        public var audioPackets: Int
        public var videoCodec: String
    }

    public static func clip(input: String, from: Double, to: Double, output: String, reencode: Bool) throws -> Result {
        guard from.isFinite, to.isFinite, from >= 0, to > from else {
            throw SightlineError.invalidOption(name: "clip span", value: "\(from)–\(to)", hint: "--from must be at least 0 and before --to")
        }
        let source = try FormatContext(url: input, options: [:], interrupt: InterruptGuard(), timeout: nil)
        let videoIndex = av_find_best_stream(source.pointer, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        guard videoIndex >= 0, let videoStream = source.stream(at: Int(videoIndex)) else {
            throw SightlineError.cannotOpen(input: input, reason: "it has no video stream to clip")
        }
        let duration = source.pointer.pointee.duration > 0 ? Double(source.pointer.pointee.duration) / Double(AV_TIME_BASE) : nil
        if let duration, from >= duration {
            throw SightlineError.invalidOption(name: "--from", value: String(format: "%.3f", from), hint: String(format: "the file is %.3f s long", duration))
        }

        var maybeOutput: UnsafeMutablePointer<AVFormatContext>? = nil
        let made = avformat_alloc_output_context2(&maybeOutput, nil, nil, output)
        guard made >= 0, let sink = maybeOutput else {
            throw SightlineError.cannotOpen(input: output, reason: "no container for this name (use .mp4, .mkv, .mov, …): \(ffmpegErrorString(made))")
        }
        defer {
            if let pb = sink.pointee.pb, (sink.pointee.oformat.pointee.flags & AVFMT_NOFILE) == 0 { var io: UnsafeMutablePointer<AVIOContext>? = pb; avio_closep(&io) }
            avformat_free_context(sink)
        }

        // Output streams: the video, and every audio stream (copied). Others (subtitles, data)
        // are left out: many containers cannot hold another's subtitle codec.
        var mapping: [Int: UnsafeMutablePointer<AVStream>] = [:]
        var encoder: ClipEncoder? = nil
        for index in 0..<source.streamCount {
            guard let stream = source.stream(at: index), let parameters = stream.pointee.codecpar else { continue }
            let type = parameters.pointee.codec_type
            guard index == Int(videoIndex) || type == AVMEDIA_TYPE_AUDIO else { continue }
            guard let out = avformat_new_stream(sink, nil) else { throw SightlineError.cannotOpen(input: output, reason: "out of memory") }
            if index == Int(videoIndex) && reencode {
                let e = try ClipEncoder(stream: stream, input: input, globalHeader: (sink.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER) != 0)
                let status = avcodec_parameters_from_context(out.pointee.codecpar, e.encoder)
                guard status >= 0 else { throw FFmpegError(code: status, operation: "set up the clip's video stream") }
                out.pointee.time_base = e.encoder.pointee.time_base
                encoder = e
            } else {
                let status = avcodec_parameters_copy(out.pointee.codecpar, parameters)
                guard status >= 0 else { throw FFmpegError(code: status, operation: "copy stream \(index)") }
                out.pointee.codecpar.pointee.codec_tag = 0  // let the muxer pick its own tag
                out.pointee.time_base = stream.pointee.time_base
            }
            mapping[index] = out
        }
        if (sink.pointee.oformat.pointee.flags & AVFMT_NOFILE) == 0 {
            let status = avio_open(&sink.pointee.pb, output, AVIO_FLAG_WRITE)
            guard status >= 0 else { throw SightlineError.cannotOpen(input: output, reason: "cannot create it: \(ffmpegErrorString(status))") }
        }
        var status = avformat_write_header(sink, nil)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "write the clip's header (can this container hold these codecs?)") }

        status = av_seek_frame(source.pointer, -1, Int64(from * Double(AV_TIME_BASE)), AVSEEK_FLAG_BACKWARD)
        if status < 0 { _ = av_seek_frame(source.pointer, -1, 0, AVSEEK_FLAG_BACKWARD) }

        let videoTB = videoStream.pointee.time_base
        func seconds(_ ts: Int64, _ tb: AVRational) -> Double { Double(ts) * Double(tb.num) / Double(tb.den) }
        let packet = Packet()
        var origin: Double? = reencode ? from : nil  // media time that becomes 0 in the clip
        var result = Result(start: 0, end: 0, videoFrames: 0, audioPackets: 0, videoCodec: encoder?.codecName ?? String(cString: avcodec_get_name(videoStream.pointee.codecpar.pointee.codec_id)))
        var firstVideo: Double? = nil
        var lastVideo: Double = 0
        var pendingAudio: [(Int, UnsafeMutablePointer<AVPacket>)] = []  // audio read before the video keyframe fixed the origin
        defer { for (_, p) in pendingAudio { var doomed: UnsafeMutablePointer<AVPacket>? = p; av_packet_free(&doomed) } }

        func write(_ pkt: UnsafeMutablePointer<AVPacket>, from index: Int, origin: Double) throws {
            guard let out = mapping[index], let stream = source.stream(at: index) else { return }
            let tb = stream.pointee.time_base
            let shift = Int64((origin * Double(tb.den) / Double(tb.num)).rounded())
            if pkt.pointee.pts != SL_AV_NOPTS_VALUE { pkt.pointee.pts -= shift }
            if pkt.pointee.dts != SL_AV_NOPTS_VALUE { pkt.pointee.dts -= shift }
            av_packet_rescale_ts(pkt, tb, out.pointee.time_base)
            pkt.pointee.stream_index = out.pointee.index
            pkt.pointee.pos = -1
            let status = av_interleaved_write_frame(sink, pkt)
            guard status >= 0 else { throw FFmpegError(code: status, operation: "write the clip") }
        }

        reading: while av_read_frame(source.pointer, packet.pointer) >= 0 {
            defer { packet.unref() }
            let index = Int(packet.pointer.pointee.stream_index)
            guard mapping[index] != nil, let stream = source.stream(at: index) else { continue }
            let tb = stream.pointee.time_base
            let ts = packet.pointer.pointee.pts != SL_AV_NOPTS_VALUE ? packet.pointer.pointee.pts : packet.pointer.pointee.dts
            guard ts != SL_AV_NOPTS_VALUE else { continue }
            let t = seconds(ts, tb)
            if index == Int(videoIndex) {
                if let encoder {
                    for frame in try encoder.decode(packet.pointer) where frame.time >= from - 1e-6 && frame.time < to - 1e-6 {
                        for encoded in try encoder.encode(frame.buffer, time: frame.time - from) { try write(encoded, videoIndex: Int(videoIndex)) }
                        result.videoFrames += 1
                        firstVideo = firstVideo ?? frame.time
                        lastVideo = frame.time
                    }
                    // Past the end, and no frame before `to` can still come (B-frames reorder
                    // within a GOP; one second of slack covers them).
                    if t >= to + 1 { break reading }
                } else {
                    if firstVideo == nil {
                        guard (packet.pointer.pointee.flags & SL_AV_PKT_FLAG_KEY) != 0 else { continue }  // start on a keyframe
                        firstVideo = t
                        origin = t
                        for (i, p) in pendingAudio {
                            let at = seconds(p.pointee.pts, source.stream(at: i)?.pointee.time_base ?? tb)
                            if at >= t - 1e-6 && at < to { try write(p, from: i, origin: t); result.audioPackets += 1 }
                        }
                    }
                    if t >= to - 1e-6 {
                        // Copy on while later-decoded frames still show before `to`.
                        if (packet.pointer.pointee.flags & SL_AV_PKT_FLAG_KEY) != 0 || t >= to + 1 { break reading }
                        continue
                    }
                    try write(packet.pointer, from: index, origin: origin ?? t)
                    result.videoFrames += 1
                    lastVideo = max(lastVideo, t)
                }
            } else if let origin {
                guard t >= origin - 1e-6, t < to else { continue }
                try write(packet.pointer, from: index, origin: origin)
                result.audioPackets += 1
            } else if t < to, let copy = av_packet_clone(packet.pointer) {
                pendingAudio.append((index, copy))
            }
        }
        if let encoder {
            for frame in try encoder.decode(nil) where frame.time >= from - 1e-6 && frame.time < to - 1e-6 {
                for encoded in try encoder.encode(frame.buffer, time: frame.time - from) { try write(encoded, videoIndex: Int(videoIndex)) }
                result.videoFrames += 1
                firstVideo = firstVideo ?? frame.time
                lastVideo = frame.time
            }
            for encoded in try encoder.encode(nil, time: 0) { try write(encoded, videoIndex: Int(videoIndex)) }
        }

        func write(_ encoded: UnsafeMutablePointer<AVPacket>, videoIndex: Int) throws {
            defer { var doomed: UnsafeMutablePointer<AVPacket>? = encoded; av_packet_free(&doomed) }
            guard let out = mapping[videoIndex], let encoder else { return }
            // A last frame without a duration is cut off by an MP4 edit list: one frame period.
            if encoded.pointee.duration <= 0 { encoded.pointee.duration = encoder.frameTicks }
            av_packet_rescale_ts(encoded, encoder.encoder.pointee.time_base, out.pointee.time_base)
            encoded.pointee.stream_index = out.pointee.index
            let status = av_interleaved_write_frame(sink, encoded)
            guard status >= 0 else { throw FFmpegError(code: status, operation: "write the clip") }
        }

        guard result.videoFrames > 0 else {
            throw SightlineError.invalidOption(name: "clip span", value: String(format: "%.3f–%.3f s", from, to), hint: "no video frame falls in it")
        }
        status = av_write_trailer(sink)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "finish the clip") }
        result.start = firstVideo ?? from
        result.end = min(to, lastVideo + 1 / max(1, av_q2d(videoStream.pointee.avg_frame_rate)))
        _ = videoTB
        return result
    }
}

/// Decodes the clip's video and encodes it again, frame-exactly (the `--reencode` path).
private final class ClipEncoder {
    let decoder: VideoDecoder
    let encoder: UnsafeMutablePointer<AVCodecContext>
    let codecName: String
    private let timeBase: AVRational
    /// One frame period in the encoder's time base.
    let frameTicks: Int64
    private let sourceTimeBase: AVRational
    private var converter: OpaquePointer?
    private let converted: DecodedFrameBuffer

    struct Decoded {
        let buffer: DecodedFrameBuffer
        let time: Double
    }

    init(stream: UnsafeMutablePointer<AVStream>, input: String, globalHeader: Bool) throws {
        decoder = try VideoDecoder(stream: stream, input: input, mode: .all, threads: 0, lowDelay: false)
        guard let codec = avcodec_find_encoder_by_name("libx264") ?? avcodec_find_encoder(AV_CODEC_ID_MPEG4),
              let context = avcodec_alloc_context3(codec) else {
            throw SightlineError.decoderFailed(input: input, reason: "this FFmpeg has neither libx264 nor an MPEG-4 encoder")
        }
        encoder = context
        codecName = String(cString: codec.pointee.name)
        sourceTimeBase = stream.pointee.time_base
        let rate = stream.pointee.avg_frame_rate.num > 0 ? stream.pointee.avg_frame_rate : AVRational(num: 25, den: 1)
        // A fine time base keeps every source timestamp exact (variable frame rate survives).
        timeBase = AVRational(num: 1, den: 90_000)
        frameTicks = max(1, Int64((90_000 * Double(rate.den) / Double(rate.num)).rounded()))
        context.pointee.width = decoder.context.pointee.width
        context.pointee.height = decoder.context.pointee.height
        context.pointee.sample_aspect_ratio = decoder.context.pointee.sample_aspect_ratio
        context.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        context.pointee.time_base = timeBase
        context.pointee.framerate = rate
        context.pointee.thread_count = 0
        if globalHeader { context.pointee.flags |= SL_AV_CODEC_FLAG_GLOBAL_HEADER }
        var options: OpaquePointer? = nil
        defer { av_dict_free(&options) }
        if codecName == "libx264" {
            av_dict_set(&options, "crf", "18", 0)  // visually lossless: a clip is for watching
            av_dict_set(&options, "preset", "veryfast", 0)
        } else {
            context.pointee.flags |= SL_AV_CODEC_FLAG_QSCALE
            context.pointee.global_quality = 3 * SL_FF_QP2LAMBDA
        }
        let status = avcodec_open2(context, codec, &options)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "open the \(codecName) encoder") }
        converted = DecodedFrameBuffer()
    }

    deinit {
        var doomed: UnsafeMutablePointer<AVCodecContext>? = encoder
        avcodec_free_context(&doomed)
        sws_freeContext(converter)
    }

    /// Frames the packet completes (nil drains the decoder), each with its media time.
    func decode(_ packet: UnsafeMutablePointer<AVPacket>?) throws -> [Decoded] {
        var frames: [Decoded] = []
        let sent = decoder.send(packet)
        guard sent >= 0 || sent == SL_AVERROR_EOF || sent == SL_AVERROR_EAGAIN else { return [] }  // a damaged packet: skip it, as players do
        while true {
            let frame = DecodedFrameBuffer()
            let status = decoder.receive(into: frame)
            if status == SL_AVERROR_EAGAIN || status == SL_AVERROR_EOF { break }
            guard status >= 0 else { throw FFmpegError(code: status, operation: "decode the clip's video") }
            let ts = frame.pointer.pointee.best_effort_timestamp
            guard ts != SL_AV_NOPTS_VALUE else { continue }
            frames.append(Decoded(buffer: frame, time: Double(ts) * av_q2d(sourceTimeBase)))
        }
        return frames
    }

    /// Encodes one frame at clip time `time` (nil flushes); returns finished packets (owned).
    func encode(_ frame: DecodedFrameBuffer?, time: Double) throws -> [UnsafeMutablePointer<AVPacket>] {
        var status: Int32
        if let frame {
            let source = frame.pointer
            var input = source
            if AVPixelFormat(source.pointee.format) != AV_PIX_FMT_YUV420P || source.pointee.width != encoder.pointee.width || source.pointee.height != encoder.pointee.height {
                converter = sws_getCachedContext(converter, source.pointee.width, source.pointee.height, AVPixelFormat(source.pointee.format),
                                                 encoder.pointee.width, encoder.pointee.height, AV_PIX_FMT_YUV420P, SWS_BICUBIC, nil, nil, nil)
                converted.unref()
                converted.pointer.pointee.width = encoder.pointee.width
                converted.pointer.pointee.height = encoder.pointee.height
                converted.pointer.pointee.format = AV_PIX_FMT_YUV420P.rawValue
                guard let converter, av_frame_get_buffer(converted.pointer, 0) >= 0 else {
                    throw SightlineError.decoderFailed(input: "clip", reason: "cannot convert the video to YUV 4:2:0")
                }
                withUnsafePointer(to: &source.pointee.data) { s in
                    withUnsafePointer(to: &source.pointee.linesize) { sl in
                        withUnsafeMutablePointer(to: &converted.pointer.pointee.data) { d in
                            withUnsafeMutablePointer(to: &converted.pointer.pointee.linesize) { dl in
                                s.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { sp in
                                    sl.withMemoryRebound(to: Int32.self, capacity: 8) { slp in
                                        d.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { dp in
                                            dl.withMemoryRebound(to: Int32.self, capacity: 8) { dlp in
                                                _ = sws_scale(converter, sp, slp, 0, source.pointee.height, dp, dlp)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                input = converted.pointer
            }
            input.pointee.pts = Int64((time / av_q2d(timeBase)).rounded())
            input.pointee.pict_type = AV_PICTURE_TYPE_NONE
            status = avcodec_send_frame(encoder, input)
        } else {
            status = avcodec_send_frame(encoder, nil)
        }
        guard status >= 0 || status == SL_AVERROR_EOF else { throw FFmpegError(code: status, operation: "encode the clip") }
        var packets: [UnsafeMutablePointer<AVPacket>] = []
        while true {
            guard let packet = av_packet_alloc() else { break }
            let received = avcodec_receive_packet(encoder, packet)
            if received < 0 {
                var doomed: UnsafeMutablePointer<AVPacket>? = packet
                av_packet_free(&doomed)
                if received == SL_AVERROR_EAGAIN || received == SL_AVERROR_EOF { break }
                throw FFmpegError(code: received, operation: "encode the clip")
            }
            packets.append(packet)
        }
        return packets
    }
}
