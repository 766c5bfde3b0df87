import ArgumentParser
import Foundation
import SightlineCore
import SightlineIndex
import SightlineMedia

struct ClipCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clip",
        abstract: "Cut a time span out of a video: packets copied from the keyframe at or before --from, or frame-exact with --reencode.",
        discussion: """
            Examples:
              sightline clip match.mp4 --from 1:05 --to 1:20 goal.mp4
              sightline clip match.mp4 --from 65.2 --to 80 goal.mkv --reencode
            """)

    @Argument(help: "The video to cut from.") var file: String
    @Option(help: "Start (seconds, m:ss or h:mm:ss).") var from: String
    @Option(help: "End (seconds, m:ss or h:mm:ss).") var to: String
    @Argument(help: "The clip to write; its name picks the container (.mp4, .mkv, .mov, …).") var output: String
    @Flag(help: "Decode and encode the video (libx264) so the clip starts and ends on the exact frames; audio is copied.") var reencode = false
    @Flag(help: "Replace OUTPUT if it exists.") var overwrite = false

    func run() throws {
        FFmpegLogLevel.error.apply()  // the encoder's banner is not news
        guard let start = MediaTime.seconds(parsing: from) else { throw ValidationError("--from '\(from)' is not a time (seconds, m:ss or h:mm:ss)") }
        guard let end = MediaTime.seconds(parsing: to) else { throw ValidationError("--to '\(to)' is not a time (seconds, m:ss or h:mm:ss)") }
        guard end > start else { throw ValidationError("--to (\(to)) must come after --from (\(from))") }
        let inputPath = URL(fileURLWithPath: file).standardizedFileURL.path
        let outputPath = URL(fileURLWithPath: output).standardizedFileURL.path
        guard inputPath != outputPath else { throw ValidationError("the clip cannot overwrite its own source") }
        if FileManager.default.fileExists(atPath: output) && !overwrite {
            throw ValidationError("'\(output)' exists; pass --overwrite to replace it")
        }
        // Written beside the target and renamed when complete: a failed cut leaves no half file.
        let partial = output + ".partial." + URL(fileURLWithPath: output).pathExtension
        defer { try? FileManager.default.removeItem(atPath: partial) }
        let result = try MediaClipper.clip(input: file, from: start, to: end, output: partial, reencode: reencode)
        _ = try? FileManager.default.removeItem(atPath: output)
        try FileManager.default.moveItem(atPath: partial, toPath: output)
        let early = result.start < start - 0.0005 ? String(format: " (from the keyframe %.3f s before --from; --reencode cuts exactly)", start - result.start) : ""
        print(String(format: "%@: %@–%@, %d video frames (%@)%@", output, MediaTime.format(result.start), MediaTime.format(result.end), result.videoFrames,
                     reencode ? "re-encoded with \(result.videoCodec)" : "copied \(result.videoCodec)", early))
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export an indexed video's shot list with captions: CSV and HTML (PySceneDetect's), CMX 3600 EDL, OpenTimelineIO JSON.",
        discussion: """
            Examples:
              sightline export shots clip.mp4 --format csv
              sightline export shots clip.mp4 --format otio --index out/ -o clip.otio
            """)

    @Argument(help: "What to export (shots).") var what: String
    @Argument(help: "The video: its path, file name or source id in the index.") var file: String
    @Option(help: "Format: \(ShotExport.Format.allCases.map(\.rawValue).joined(separator: ", ")).") var format = "csv"
    @Option(help: "Folder holding sightline-index.sqlite (default: ./ if it holds one, else ./sightline-batch).") var index: String?
    @Option(name: [.short, .long], help: "Write here instead of standard output.") var output: String?
    @Option(help: "Frame rate for frame numbers and timecodes (default: read from the video).") var fps: Double?

    func run() throws {
        guard what == "shots" else { throw ValidationError("'\(what)' cannot be exported; try `sightline export shots FILE`") }
        guard let format = ShotExport.Format(rawValue: format) else {
            throw ValidationError("--format '\(format)' is not one of \(ShotExport.Format.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let fps { guard fps > 0, fps <= 1000 else { throw ValidationError("--fps must be above 0 and at most 1000") } }
        let folder = index ?? (FileManager.default.fileExists(atPath: IndexStore.fileName) ? "." : "sightline-batch")
        let store = try IndexStore(folder: folder, create: false)
        let list = try store.shotList(for: file)
        let rate: Double
        if let fps {
            rate = fps
        } else {
            let report = try MediaProbe.probe(url: list.location)
            guard let probed = report.streams.first(where: { $0.isDefaultVideo })?.frameRate ?? report.streams.first(where: { $0.type == "video" })?.frameRate, probed > 0 else {
                throw ValidationError("cannot read the frame rate of \(list.location); pass --fps")
            }
            rate = probed
        }
        let base: String
        if let output {
            let from = URL(fileURLWithPath: output).standardizedFileURL.deletingLastPathComponent().pathComponents
            let to = store.folder.pathComponents
            let common = zip(from, to).prefix { $0 == $1 }.count
            base = (Array(repeating: "..", count: from.count - common) + to.dropFirst(common)).joined(separator: "/")
        } else {
            base = store.folder.path
        }
        let text = ShotExport.render(list, format: format, fps: rate, thumbnailBase: base.isEmpty ? "" : base + "/")
        if let output {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            FileHandle.standardError.write(Data("\(output): \(list.shots.count) shots of \(list.location)\n".utf8))
        } else {
            print(text, terminator: "")
        }
    }
}
