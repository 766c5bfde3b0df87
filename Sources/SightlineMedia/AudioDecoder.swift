import CFFmpeg
import Foundation
import SightlineCore

/// One audio stream's decoder and resampler: packets in, mono float samples at one rate out
/// (16 kHz for speech models), each block with the stream time of its first sample. Shared by
/// `AudioReader` (a file's track read on its own) and `VideoSource` (a live stream's audio,
/// from the demuxer the video comes from).
final class AudioDecoder {
    let sampleRate: Int
    let input: String
    let timeBase: Rational
    private var codec: UnsafeMutablePointer<AVCodecContext>?
    private var resampler: OpaquePointer?
    private let decoded = DecodedFrameBuffer()
    private var flushedResampler = false

    init(stream: UnsafeMutablePointer<AVStream>, sampleRate: Int, input: String) throws {
        try Self.check(sampleRate: sampleRate)
        self.sampleRate = sampleRate
        self.input = input
        timeBase = Rational(stream.pointee.time_base)
        guard let parameters = stream.pointee.codecpar, let decoder = avcodec_find_decoder(parameters.pointee.codec_id) else {
            throw SightlineError.decoderFailed(input: input, reason: "this FFmpeg has no decoder for the audio track")
        }
        codec = avcodec_alloc_context3(decoder)
        guard let codec else { throw SightlineError.decoderFailed(input: input, reason: "out of memory") }
        var status = avcodec_parameters_to_context(codec, parameters)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "read the audio track's parameters") }
        status = avcodec_open2(codec, decoder, nil)
        guard status >= 0 else { throw FFmpegError(code: status, operation: "open the audio decoder") }
    }

    /// Output rates the resampler is asked for: speech models take 16 kHz; 8–192 kHz is sane.
    static func check(sampleRate: Int) throws {
        guard (8_000...192_000).contains(sampleRate) else {
            throw SightlineError.invalidOption(name: "sample_rate", value: String(sampleRate), hint: "8000 to 192000")
        }
    }

    deinit {
        avcodec_free_context(&codec)
        swr_free(&resampler)
    }

    /// Sends one packet (nil: the end) and returns the blocks it completes: (stream seconds of
    /// the first sample when the decoder knows it, samples). A damaged packet is skipped (the
    /// decoder resyncs), as ffmpeg does.
    func decode(_ packet: UnsafeMutablePointer<AVPacket>?) throws -> [(seconds: Double?, samples: [Float])] {
        guard let codec else { return [] }
        _ = avcodec_send_packet(codec, packet)
        var blocks: [(seconds: Double?, samples: [Float])] = []
        while true {
            let received = avcodec_receive_frame(codec, decoded.pointer)
            if received == SL_AVERROR_EAGAIN { break }
            if received == SL_AVERROR_EOF {
                if let tail = try flushResampler() { blocks.append((nil, tail)) }
                break
            }
            guard received >= 0 else { throw FFmpegError(code: received, operation: "decode audio") }
            defer { decoded.unref() }
            let pts = decoded.pointer.pointee.best_effort_timestamp
            let seconds = pts == SL_AV_NOPTS_VALUE || !timeBase.isValid ? nil : Double(pts) * timeBase.doubleValue
            blocks.append((seconds, try resample(decoded.pointer)))
        }
        return blocks
    }

    private func resample(_ frame: UnsafeMutablePointer<AVFrame>) throws -> [Float] {
        if resampler == nil {
            var mono = AVChannelLayout()
            av_channel_layout_default(&mono, 1)
            var layout = frame.pointee.ch_layout
            if layout.nb_channels <= 0 { av_channel_layout_default(&layout, 1) }
            let status = swr_alloc_set_opts2(&resampler, &mono, AV_SAMPLE_FMT_FLT, Int32(sampleRate),
                                             &layout, AVSampleFormat(frame.pointee.format), frame.pointee.sample_rate, 0, nil)
            guard status >= 0, swr_init(resampler) >= 0 else {
                swr_free(&resampler)
                throw SightlineError.decoderFailed(input: input, reason: "libswresample cannot convert this audio (\(frame.pointee.sample_rate) Hz, \(frame.pointee.ch_layout.nb_channels) channels)")
            }
        }
        let inputCount = Int(frame.pointee.nb_samples)
        guard inputCount >= 0, inputCount <= 1 << 22, frame.pointee.sample_rate > 0 else {
            throw SightlineError.decoderFailed(input: input, reason: "an audio frame claims \(inputCount) samples")
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
