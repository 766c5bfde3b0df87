import CFFmpeg
import Foundation
import SightlineCore

/// Owns an opened AVFormatContext (demuxer) and closes it exactly once.
final class FormatContext {
    let pointer: UnsafeMutablePointer<AVFormatContext>
    let url: String
    private let interrupt: InterruptGuard
    private let openRecord: UnsafeMutablePointer<sl_open_record>

    /// Opens `url` with the given AVOptions and reads stream info, bounded by `timeout`.
    init(url: String, options: [String: String], interrupt: InterruptGuard, timeout: Double?) throws {
        guard var context = avformat_alloc_context() else {
            throw SightlineError.cannotOpen(input: url, reason: "out of memory")
        }
        let openRecord = UnsafeMutablePointer<sl_open_record>.allocate(capacity: 1)
        openRecord.initialize(to: sl_open_record(opened: 0, refused: 0))
        interrupt.install(on: context)
        self.interrupt = interrupt
        self.url = url
        // A local file may only read itself: its opens go through sl_io_open_input_only, and
        // demuxers that open other inputs by themselves (concat) or run code are not allowed.
        // Network URLs keep FFmpeg's own opening: HLS and DASH over HTTP fetch segments.
        let isLocalFile = !url.contains("://") || url.hasPrefix("file:")
        if isLocalFile { sl_restrict_to_input(context, openRecord) }
        var options = options
        if isLocalFile { options["format_whitelist"] = Self.localFormatWhitelist }

        var dictionary: OpaquePointer? = nil
        for (key, value) in options.sorted(by: { $0.key < $1.key }) {
            av_dict_set(&dictionary, key, value, 0)
        }
        defer { av_dict_free(&dictionary) }

        interrupt.arm(seconds: timeout)
        var maybeContext: UnsafeMutablePointer<AVFormatContext>? = context
        let openResult = avformat_open_input(&maybeContext, url, nil, &dictionary)
        guard openResult >= 0, let opened = maybeContext else {
            // avformat_open_input frees the context on failure; the record is ours.
            defer { openRecord.deallocate() }
            if isLocalFile, openRecord.pointee.refused != 0 || Self.deniedFormat(of: url) != nil {
                throw Self.refersElsewhere(url: url, format: Self.deniedFormat(of: url))
            }
            throw Self.openError(url: url, code: openResult, timedOut: interrupt.didExpire)
        }
        context = opened

        interrupt.arm(seconds: timeout)
        let infoResult = avformat_find_stream_info(context, nil)
        interrupt.arm(seconds: nil)
        if isLocalFile, openRecord.pointee.refused != 0 {
            var doomed: UnsafeMutablePointer<AVFormatContext>? = context
            avformat_close_input(&doomed)
            openRecord.deallocate()
            throw Self.refersElsewhere(url: url, format: nil)
        }
        if infoResult < 0 {
            var doomed: UnsafeMutablePointer<AVFormatContext>? = context
            avformat_close_input(&doomed)
            openRecord.deallocate()
            throw Self.openError(url: url, code: infoResult, timedOut: interrupt.didExpire)
        }
        self.pointer = context
        self.openRecord = openRecord
    }

    deinit {
        var doomed: UnsafeMutablePointer<AVFormatContext>? = pointer
        avformat_close_input(&doomed)
        openRecord.deallocate()
    }

    /// Demuxers a local file may not use: they open other files or the network by themselves
    /// (concat, playlists, session descriptions) or run scripts.
    static let deniedLocalFormats: Set<String> = ["concat", "hls", "applehttp", "dash", "imf", "sdp", "rtsp", "rtp", "sap", "vapoursynth", "avisynth"]

    /// Every demuxer this FFmpeg has, but the denied ones (FFmpeg has an allow list only).
    static let localFormatWhitelist: String = {
        var names: [String] = []
        var iterator: UnsafeMutableRawPointer? = nil
        while let demuxer = av_demuxer_iterate(&iterator) {
            let parts = String(cString: demuxer.pointee.name).split(separator: ",").map(String.init)
            if parts.contains(where: deniedLocalFormats.contains) { continue }
            names += parts
        }
        return names.joined(separator: ",")
    }()

    /// The denied demuxer FFmpeg would pick for a local file, from its first 4 KiB (to say why
    /// it was refused); nil for anything else.
    static func deniedFormat(of path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path.hasPrefix("file:") ? String(path.dropFirst(5)) : path) else { return nil }
        defer { try? handle.close() }
        var attributes = stat()
        guard fstat(handle.fileDescriptor, &attributes) == 0, (attributes.st_mode & S_IFMT) == S_IFREG else { return nil }
        guard let head = try? handle.read(upToCount: 4096), !head.isEmpty else { return nil }
        var buffer = [UInt8](head) + [UInt8](repeating: 0, count: Int(AVPROBE_PADDING_SIZE))
        return buffer.withUnsafeMutableBufferPointer { bytes -> String? in
            path.withCString { name -> String? in
                var probe = AVProbeData(filename: name, buf: bytes.baseAddress, buf_size: Int32(head.count), mime_type: nil)
                guard let format = av_probe_input_format(&probe, 1) else { return nil }
                let parts = String(cString: format.pointee.name).split(separator: ",").map(String.init)
                return parts.first(where: deniedLocalFormats.contains)
            }
        }
    }

    var streamCount: Int { Int(pointer.pointee.nb_streams) }

    func stream(at index: Int) -> UnsafeMutablePointer<AVStream>? {
        guard index >= 0, index < streamCount, let streams = pointer.pointee.streams else { return nil }
        return streams[index]
    }

    static func refersElsewhere(url: String, format: String?) -> SightlineError {
        .cannotOpen(input: url, reason: "it \(format.map { "is a '\($0)' file: it " } ?? "")refers to other files or URLs (a playlist or list); a local input may only read itself")
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
