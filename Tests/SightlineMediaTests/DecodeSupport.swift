import SightlineCore
import SightlineMedia

struct DecodeRun {
    var frames: [Frame] = []
    var stats = SourceStats()
    var opened: [StreamInfo] = []
}

/// Reads a source to its end with the real decoder and collects what it yields.
func decodeAll(_ url: String, _ options: SourceOptions = SourceOptions(output: nil)) throws -> DecodeRun {
    // Damaged fixtures make FFmpeg log every concealed macroblock; the counters say it all.
    FFmpegLogLevel.quiet.apply()
    let source = VideoSource(url: url, options: options)
    var run = DecodeRun()
    var sawEnd = false
    while let event = try source.next() {
        switch event {
        case .opened(let info): run.opened.append(info)
        case .frame(let frame): run.frames.append(frame)
        case .endOfStream(let stats):
            run.stats = stats
            sawEnd = true
        case .reconnecting, .gap: break
        }
    }
    precondition(sawEnd, "source ended without end-of-stream")
    return run
}
