import CFFmpeg
import Foundation
import SightlineCore

/// Owns an opened AVFormatContext (demuxer) and closes it exactly once.
final class FormatContext {
    let pointer: UnsafeMutablePointer<AVFormatContext>
    let url: String
    private let interrupt: InterruptGuard

    /// Opens `url` with the given AVOptions and reads stream info, bounded by `timeout`.
    init(url: String, options: [String: String], interrupt: InterruptGuard, timeout: Double?) throws {
        guard var context = avformat_alloc_context() else {
            throw SightlineError.cannotOpen(input: url, reason: "out of memory")
        }
        interrupt.install(on: context)
        self.interrupt = interrupt
        self.url = url

        var dictionary: OpaquePointer? = nil
        for (key, value) in options.sorted(by: { $0.key < $1.key }) {
            av_dict_set(&dictionary, key, value, 0)
        }
        defer { av_dict_free(&dictionary) }

        interrupt.arm(seconds: timeout)
        var maybeContext: UnsafeMutablePointer<AVFormatContext>? = context
        let openResult = avformat_open_input(&maybeContext, url, nil, &dictionary)
        guard openResult >= 0, let opened = maybeContext else {
            // avformat_open_input frees the context on failure.
            throw Self.openError(url: url, code: openResult, timedOut: interrupt.didExpire)
        }
        context = opened

        interrupt.arm(seconds: timeout)
        let infoResult = avformat_find_stream_info(context, nil)
        interrupt.arm(seconds: nil)
        if infoResult < 0 {
            var doomed: UnsafeMutablePointer<AVFormatContext>? = context
            avformat_close_input(&doomed)
            throw Self.openError(url: url, code: infoResult, timedOut: interrupt.didExpire)
        }
        self.pointer = context
    }

    deinit {
        var doomed: UnsafeMutablePointer<AVFormatContext>? = pointer
        avformat_close_input(&doomed)
    }

    var streamCount: Int { Int(pointer.pointee.nb_streams) }

    func stream(at index: Int) -> UnsafeMutablePointer<AVStream>? {
        guard index >= 0, index < streamCount, let streams = pointer.pointee.streams else { return nil }
        return streams[index]
    }

    static func openError(url: String, code: Int32, timedOut: Bool) -> SightlineError {
        if timedOut {
            return .cannotOpen(input: url, reason: "timed out waiting for data")
        }
        if code == POSIXCode.noEntry, !url.contains("://") || url.hasPrefix("file:") {
            return .inputNotFound(input: url)
        }
        if code == SL_AVERROR_INVALIDDATA {
            return .cannotOpen(input: url, reason: "not a readable media file (unknown format, or truncated before its index)")
        }
        return .cannotOpen(input: url, reason: ffmpegErrorString(code))
    }
}

/// Owns an AVPacket.
final class Packet {
    let pointer: UnsafeMutablePointer<AVPacket>

    init() {
        // av_packet_alloc fails only when malloc does; nothing sensible continues after that.
        guard let packet = av_packet_alloc() else { fatalError("av_packet_alloc: out of memory") }
        pointer = packet
    }

    deinit {
        var doomed: UnsafeMutablePointer<AVPacket>? = pointer
        av_packet_free(&doomed)
    }

    func unref() { av_packet_unref(pointer) }
}

/// Owns an AVFrame.
final class DecodedFrameBuffer {
    let pointer: UnsafeMutablePointer<AVFrame>

    init() {
        guard let frame = av_frame_alloc() else { fatalError("av_frame_alloc: out of memory") }
        pointer = frame
    }

    deinit {
        var doomed: UnsafeMutablePointer<AVFrame>? = pointer
        av_frame_free(&doomed)
    }

    func unref() { av_frame_unref(pointer) }
}

extension Rational {
    init(_ r: AVRational) { self.init(Int64(r.num), Int64(r.den)) }
}
