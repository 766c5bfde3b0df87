import CFFmpeg
import Foundation
import SightlineCore

/// A media file's (or stream's) best audio track, decoded and resampled to mono float samples
/// at one rate (16 kHz for speech models) by libswresample, read block by block. A file with
/// no audio track is not an error here: `init` returns nil and the caller says so once.
///
/// One reader per owner (not Sendable); it owns its demuxer, decoder and resampler.
public final class AudioReader {
    public let sampleRate: Int
    /// Seconds of the track's first sample on the file's clock (usually 0).
    public private(set) var startSeconds: Double = 0
    private let format: FormatContext
    private let streamIndex: Int32
    private var codec: UnsafeMutablePointer<AVCodecContext>?
    private var resampler: OpaquePointer?
    private let packet = Packet()
    private let decoded = DecodedFrameBuffer()
    private var drained = false
    private var flushedResampler = false
    private var sawFirst = false

    /// Opens `url`; nil when it has no audio track.
    public init?(url: String, sampleRate: Int = 16_000) throws {
        guard (8_000...192_000).contains(sampleRate) else {
            throw SightlineError.invalidOption(name: "sample_rate", value: String(sampleRate), hint: "8000 to 192000")
        }
        self.sampleRate = sampleRate
        format = try FormatContext(url: url, options: [:], interrupt: InterruptGuard(), timeout: 30)
        let index = av_find_best_stream(format.pointer, AVMEDIA_TYPE_AUDIO, -1, -1, nil, 0)
        guard index >= 0, let stream = format.stream(at: Int(index)), let parameters = stream.pointee.codecpar else { return nil }
        streamIndex = index
        guard let decoder = avcodec_find_decoder(parameters.pointee.codec_id) else {
            throw SightlineError.decoderFailed(input: url, reason: "this FFmpeg has no decoder for the audio track")
        }
        codec = avcodec_alloc_context3(decoder)
        guard let codec else { throw SightlineError.decoderFailed(input: url, reason: "out of memory") }
        var status = avcodec_parameters_to_context(codec, parameters)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "read the audio track's parameters") }
        status = avcodec_open2(codec, decoder, nil)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "open the audio decoder") }
        // Other streams are skipped by the demuxer, not read and thrown away.
        for other in 0..<Int(format.pointer.pointee.nb_streams) where other != Int(index) {
            format.stream(at: other)?.pointee.discard = AVDISCARD_ALL
        }
        let timeBase = Rational(stream.pointee.time_base)
        if stream.pointee.start_time != SL_AV_NOPTS_VALUE, timeBase.isValid {
            startSeconds = Double(stream.pointee.start_time) * timeBase.doubleValue
        }
    }

    deinit {
        avcodec_free_context(&codec)
        swr_free(&resampler)
    }

    /// The next samples (mono, -1…1, `sampleRate` per second), or nil at the end of the track.
    public func read() throws -> [Float]? {
        guard let codec else { return nil }
        while true {
            let received = avcodec_receive_frame(codec, decoded.pointer)
            if received >= 0 {
                defer { decoded.unref() }
                return try resample(decoded.pointer)
            }
            if received == SL_AVERROR_EOF {
                return try flushResampler()
            }
            guard received == SL_AVERROR_EAGAIN else { throw FFmpegError(code: received, operation: "decode audio") }
            if drained { return try flushResampler() }
            let read = av_read_frame(format.pointer, packet.pointer)
            if read < 0 {
                drained = true
                _ = avcodec_send_packet(codec, nil)
                continue
            }
            defer { packet.unref() }
            guard packet.pointer.pointee.stream_index == streamIndex else { continue }
            // A damaged packet is skipped (the decoder resyncs), as ffmpeg does.
            _ = avcodec_send_packet(codec, packet.pointer)
        }
    }

    /// Every sample of the track (for files; live streams read block by block).
    public func readAll(maxSeconds: Double = 6 * 3600) throws -> [Float] {
        var all: [Float] = []
        while let block = try read() {
            all += block
            guard Double(all.count) / Double(sampleRate) <= maxSeconds else {
                throw SightlineError.decoderFailed(input: format.url, reason: "the audio track is longer than \(Int(maxSeconds)) s")
            }
        }
        return all
    }

    private func resample(_ frame: UnsafeMutablePointer<AVFrame>) throws -> [Float] {
        if resampler == nil {
            var mono = AVChannelLayout()
            av_channel_layout_default(&mono, 1)
            var input = frame.pointee.ch_layout
            if input.nb_channels <= 0 { av_channel_layout_default(&input, 1) }
            let status = swr_alloc_set_opts2(&resampler, &mono, AV_SAMPLE_FMT_FLT, Int32(sampleRate),
                                             &input, AVSampleFormat(frame.pointee.format), frame.pointee.sample_rate, 0, nil)
            guard status >= 0, swr_init(resampler) >= 0 else {
                swr_free(&resampler)
                throw SightlineError.decoderFailed(input: format.url, reason: "libswresample cannot convert this audio (\(frame.pointee.sample_rate) Hz, \(frame.pointee.ch_layout.nb_channels) channels)")
            }
        }
        let inputCount = Int(frame.pointee.nb_samples)
        guard inputCount >= 0, inputCount <= 1 << 22, frame.pointee.sample_rate > 0 else {
            throw SightlineError.decoderFailed(input: format.url, reason: "an audio frame claims \(inputCount) samples")
        }
        let capacity = Int(swr_get_out_samples(resampler, Int32(inputCount))) + 32
        var out = [Float](repeating: 0, count: max(capacity, 32))
        let room = Int32(out.count)
        let input = frame.pointee.extended_data.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: UnsafePointer<UInt8>?.self) }
        let produced = out.withUnsafeMutableBytes { raw -> Int32 in
            var target: UnsafeMutablePointer<UInt8>? = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            return swr_convert(resampler, &target, room, input, Int32(inputCount))
        }
        guard produced >= 0 else { throw FFmpegError(code: produced, operation: "resample audio") }
        out.removeLast(out.count - Int(produced))
        return out
    }

    private func flushResampler() throws -> [Float]? {
        guard !flushedResampler, let resampler else { return nil }
        flushedResampler = true
        var out = [Float](repeating: 0, count: 4096)
        let produced = out.withUnsafeMutableBytes { raw -> Int32 in
            var target: UnsafeMutablePointer<UInt8>? = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            return swr_convert(resampler, &target, 4096, nil, 0)
        }
        guard produced > 0 else { return nil }
        out.removeLast(out.count - Int(produced))
        return out
    }
}
