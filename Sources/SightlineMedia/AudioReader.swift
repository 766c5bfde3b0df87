import CFFmpeg
import Foundation
import SightlineCore

/// A media file's (or stream's) best audio track, decoded and resampled to mono float samples
/// at one rate (16 kHz for speech models) by libswresample, read block by block. A file with
/// no audio track is not an error here: `init` returns nil and the caller says so once.
///
/// One reader per owner (not Sendable); it owns its demuxer and decoder.
public final class AudioReader {
    public let sampleRate: Int
    /// Seconds of the track's first sample on the file's clock (usually 0).
    public private(set) var startSeconds: Double = 0
    private let format: FormatContext
    private let streamIndex: Int32
    private let decoder: AudioDecoder
    private let packet = Packet()
    private var ready: [[Float]] = []
    private var drained = false

    /// Opens `url`; nil when it has no audio track.
    public init?(url: String, sampleRate: Int = 16_000) throws {
        try AudioDecoder.check(sampleRate: sampleRate)   // before opening the file
        self.sampleRate = sampleRate
        format = try FormatContext(url: url, options: [:], interrupt: InterruptGuard(), timeout: 30)
        let index = av_find_best_stream(format.pointer, AVMEDIA_TYPE_AUDIO, -1, -1, nil, 0)
        guard index >= 0, let stream = format.stream(at: Int(index)) else { return nil }
        streamIndex = index
        decoder = try AudioDecoder(stream: stream, sampleRate: sampleRate, input: url)
        // Other streams are skipped by the demuxer, not read and thrown away.
        for other in 0..<Int(format.pointer.pointee.nb_streams) where other != Int(index) {
            format.stream(at: other)?.pointee.discard = AVDISCARD_ALL
        }
        if stream.pointee.start_time != SL_AV_NOPTS_VALUE, decoder.timeBase.isValid {
            startSeconds = Double(stream.pointee.start_time) * decoder.timeBase.doubleValue
        }
    }

    /// The next samples (mono, -1…1, `sampleRate` per second), or nil at the end of the track.
    public func read() throws -> [Float]? {
        while ready.isEmpty {
            if drained { return nil }
            let read = av_read_frame(format.pointer, packet.pointer)
            if read < 0 {
                drained = true
                ready = try decoder.decode(nil).map(\.samples)
                continue
            }
            defer { packet.unref() }
            guard packet.pointer.pointee.stream_index == streamIndex else { continue }
            ready = try decoder.decode(packet.pointer).map(\.samples)
        }
        return ready.removeFirst()
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
}
