import ArgumentParser
import Foundation
import SightlineCore
import SightlineKernels
import SightlineMedia
import SightlineModels

struct OCRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ocr", abstract: "Find and read text in an image or video (PP-OCRv4): one line per text box.")

    @Argument(help: "An image or video file, or a URL.") var input: String
    @Option(help: "Video: frames per second of media time to read.") var fps: Double = 1
    @Option(help: "Compute threads (0: all cores).") var threads: Int = 0
    @Flag(help: "Skip the 180° angle classifier.") var noAngleClassifier = false
    @Option(help: "Look for text first at this fraction of the detector's size and skip the full-size detector on frames where none shows (0: off; a frame whose only text is tiny can be missed).")
    var probe: Double = TextRecognizer.defaultProbeScale
    @Option(help: "With --probe: run at full size on the first frame and at least every this many seconds of video however empty the probes, so text too small for the probe is read within this long (0: only the first frame).")
    var probeFullEvery: Double = TextRecognizer.defaultProbeFullEvery
    @Flag(help: "Print JSON lines.") var json = false
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        FFmpegLogLevel.quiet.apply()
        KernelThreads.setBLASThreads(1)
        let reader = try TextRecognizer(store: cache.store, threads: threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount)
        reader.useAngleClassifier = !noAngleClassifier
        guard (0...TextRecognizer.largestProbeScale).contains(probe) else {
            throw ValidationError("--probe must be between 0 and \(TextRecognizer.largestProbeScale), got \(probe)")
        }
        reader.probeScale = Float(probe)
        guard probeFullEvery >= 0, probeFullEvery.isFinite else { throw ValidationError("--probe-full-every must be 0 or more seconds, got \(probeFullEvery)") }
        reader.probeFullEvery = probeFullEvery
        // Every line is read on every frame; the memory only carries the probe's state.
        reader.keepUnchangedLines = false
        var memory: TextRecognizer.TextMemory? = nil
        let rate = Rational(parsing: String(fps)) ?? Rational(1, 1)
        let source = VideoSource(url: input, options: SourceOptions(sampling: .perSecond(rate), output: OutputFormat(pixelFormat: .rgb24)))
        while let event = try source.next() {
            guard case .frame(let frame) = event else { continue }
            for line in try reader.read(frame, changed: nil, memory: &memory) {
                let box = line.corners.map { "\(Int($0.x.rounded())),\(Int($0.y.rounded()))" }.joined(separator: " ")
                if json {
                    let text = String(decoding: try JSONEncoder().encode(line.text), as: UTF8.self)
                    print("{\"seconds\":\(frame.seconds),\"text\":\(text),\"confidence\":\(line.confidence),\"box\":[\(line.corners.map { "[\($0.x),\($0.y)]" }.joined(separator: ","))]}")
                } else {
                    print(String(format: "%8.3f s  %.3f  [%@]  %@", frame.seconds, line.confidence, box, line.text))
                }
            }
        }
    }
}
