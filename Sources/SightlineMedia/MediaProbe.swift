import CFFmpeg
import SightlineCore

/// What `sightline probe` reports: the container and each of its streams.
public struct ProbeReport: Sendable, Codable, Equatable {
    public struct Stream: Sendable, Codable, Equatable {
        public var index: Int
        public var type: String
        public var codec: String
        public var codecLongName: String?
        public var profile: String?
        public var width: Int?
        public var height: Int?
        public var pixelFormat: String?
        public var frameRate: Double?
        public var timeBase: String
        public var startSeconds: Double?
        public var durationSeconds: Double?
        public var bitRate: Int?
        public var frameCount: Int?
        public var sampleRate: Int?
        public var channels: Int?
        /// The stream Sightline would decode.
        public var isDefaultVideo: Bool
    }

    public var url: String
    public var container: String
    public var containerLongName: String
    public var durationSeconds: Double?
    public var startSeconds: Double?
    public var bitRate: Int?
    public var streams: [Stream]
}

public enum MediaProbe {
    /// Opens `url` (bounded by `timeout` seconds for network inputs) and describes it.
    public static func probe(url: String, timeout: Double? = 10, formatOptions: [String: String] = [:]) throws -> ProbeReport {
        if !url.contains("://"), !FileManager.default.fileExists(atPath: url) {
            throw SightlineError.inputNotFound(input: url)
        }
        let interrupt = InterruptGuard()
        let input = try FormatContext(url: url, options: formatOptions, interrupt: interrupt, timeout: timeout)
        let ctx = input.pointer.pointee
        let best = av_find_best_stream(input.pointer, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        var streams: [ProbeReport.Stream] = []
        for i in 0..<input.streamCount {
            guard let stream = input.stream(at: i), let par = stream.pointee.codecpar?.pointee else { continue }
            let tb = stream.pointee.time_base
            let descriptor = avcodec_descriptor_get(par.codec_id)
            let isVideo = par.codec_type == AVMEDIA_TYPE_VIDEO
            let isAudio = par.codec_type == AVMEDIA_TYPE_AUDIO
            let rate = stream.pointee.avg_frame_rate
            let profile = avcodec_profile_name(par.codec_id, par.profile).map { String(cString: $0) }
            streams.append(ProbeReport.Stream(
                index: i,
                type: av_get_media_type_string(par.codec_type).map { String(cString: $0) } ?? "unknown",
                codec: String(cString: avcodec_get_name(par.codec_id)),
                codecLongName: descriptor.flatMap { $0.pointee.long_name }.map { String(cString: $0) },
                profile: profile,
                width: isVideo ? Int(par.width) : nil,
                height: isVideo ? Int(par.height) : nil,
                pixelFormat: isVideo ? av_get_pix_fmt_name(AVPixelFormat(par.format)).map { String(cString: $0) } : nil,
                frameRate: isVideo && rate.num > 0 && rate.den > 0 ? Double(rate.num) / Double(rate.den) : nil,
                timeBase: "\(tb.num)/\(tb.den)",
                startSeconds: stream.pointee.start_time == SL_AV_NOPTS_VALUE ? nil : Double(stream.pointee.start_time) * av_q2d(tb),
                durationSeconds: stream.pointee.duration == SL_AV_NOPTS_VALUE ? nil : Double(stream.pointee.duration) * av_q2d(tb),
                bitRate: par.bit_rate > 0 ? Int(par.bit_rate) : nil,
                frameCount: stream.pointee.nb_frames > 0 ? Int(stream.pointee.nb_frames) : nil,
                sampleRate: isAudio ? Int(par.sample_rate) : nil,
                channels: isAudio ? Int(par.ch_layout.nb_channels) : nil,
                isDefaultVideo: Int32(i) == best))
        }
        let timeBase = Double(AV_TIME_BASE)
        return ProbeReport(
            url: url,
            container: ctx.iformat.map { String(cString: $0.pointee.name) } ?? "unknown",
            containerLongName: ctx.iformat.flatMap { $0.pointee.long_name }.map { String(cString: $0) } ?? "",
            durationSeconds: ctx.duration == SL_AV_NOPTS_VALUE || ctx.duration <= 0 ? nil : Double(ctx.duration) / timeBase,
            startSeconds: ctx.start_time == SL_AV_NOPTS_VALUE ? nil : Double(ctx.start_time) / timeBase,
            bitRate: ctx.bit_rate > 0 ? Int(ctx.bit_rate) : nil,
            streams: streams)
    }
}

import Foundation
