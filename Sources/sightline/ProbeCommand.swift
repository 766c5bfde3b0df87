import ArgumentParser
import Foundation
import SightlineMedia

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Describe a file or stream: container, streams, codec, size, fps, duration, bitrate."
    )

    @Argument(help: "A file path or any URL FFmpeg can open (http, hls, rtsp, rtmp, srt, udp, tcp).")
    var url: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(help: "Seconds to wait for a network source before giving up.")
    var timeout: Double = 10

    @Option(name: .customLong("option"), help: "Extra FFmpeg option key=value for opening (repeatable).")
    var options: [KeyValue] = []

    @Option(help: "FFmpeg's own log level.")
    var ffmpegLog: FFmpegLogLevel = .quiet

    func run() throws {
        ffmpegLog.apply()
        let report = try MediaProbe.probe(
            url: url, timeout: timeout,
            formatOptions: Dictionary(options.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            printText(report)
        }
    }

    private func printText(_ report: ProbeReport) {
        print("\(report.url)")
        print("  container: \(report.container) (\(report.containerLongName))")
        print("  duration:  \(formatSeconds(report.durationSeconds))   start: \(formatSeconds(report.startSeconds))   bitrate: \(report.bitRate.map { "\($0 / 1000) kb/s" } ?? "n/a")")
        for stream in report.streams {
            var line = "  stream #\(stream.index) \(stream.type): \(stream.codec)"
            if let profile = stream.profile { line += " (\(profile))" }
            if let w = stream.width, let h = stream.height { line += ", \(w)x\(h)" }
            if let pf = stream.pixelFormat { line += ", \(pf)" }
            if let fps = stream.frameRate { line += String(format: ", %.3f fps", fps) }
            if let sr = stream.sampleRate { line += ", \(sr) Hz" }
            if let ch = stream.channels { line += ", \(ch) ch" }
            if let br = stream.bitRate { line += ", \(br / 1000) kb/s" }
            if let n = stream.frameCount { line += ", \(n) frames" }
            if stream.isDefaultVideo { line += "  [decoded by default]" }
            print(line)
        }
    }
}
