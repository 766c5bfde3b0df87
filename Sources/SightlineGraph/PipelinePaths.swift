import Foundation

/// Where a pipeline's relative paths point. Files it reads (policies, templates, media named in
/// the file) resolve against the pipeline file's folder, so `sightline run /abs/Pipelines/x.yaml`
/// works from any working directory; what it writes resolves against the output folder, never
/// the pipeline's own folder. Values given on the command line (--set, --input) resolve against
/// the working directory, as a shell user expects.
public struct PipelinePaths: Sendable, Equatable {
    /// Absolute folder of the pipeline file.
    public var pipelineFolder: String
    public var workingDirectory: String
    /// Absolute output folder: `--output DIR`, else the pipeline's `output:`, else the working directory.
    public var outputDirectory: String

    public init(pipelineFile: String, output: String?, workingDirectory: String = FileManager.default.currentDirectoryPath) {
        self.workingDirectory = workingDirectory
        let file = Self.absolute(pipelineFile, against: workingDirectory)
        pipelineFolder = (file as NSString).deletingLastPathComponent
        outputDirectory = Self.absolute(output.flatMap { $0.isEmpty ? nil : $0 } ?? ".", against: workingDirectory)
    }

    /// `value` of an option of `type`, written at `location`, as an absolute path (URLs and
    /// empty values unchanged).
    public func resolve(_ value: String, type: OptionType, from location: SourceLocation) -> String {
        guard !value.isEmpty else { return value }
        switch type {
        case .inputFile, .inputFolder:
            return Self.absolute(value, against: location.isCommandLine ? workingDirectory : pipelineFolder)
        case .media:
            if Self.isURL(value) { return value }
            return Self.absolute(value, against: location.isCommandLine ? workingDirectory : pipelineFolder)
        case .outputPath:
            return Self.absolute(value, against: outputDirectory)
        default:
            return value
        }
    }

    /// `scheme:…` with a scheme of two or more characters (rtsp://, udp://, pipe:0); a single
    /// letter would be a drive, and a plain name a file.
    public static func isURL(_ value: String) -> Bool {
        guard let colon = value.firstIndex(of: ":"), value.distance(from: value.startIndex, to: colon) >= 2 else { return false }
        let scheme = value[..<colon]
        guard let first = scheme.first, first.isASCII, first.isLetter else { return false }
        return scheme.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+.-".contains($0)) }
    }

    /// `~` expanded, relative paths joined to `base`, `.` and `..` removed.
    public static func absolute(_ path: String, against base: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        let joined = expanded.hasPrefix("/") ? expanded : (base as NSString).appendingPathComponent(expanded)
        return URL(fileURLWithPath: joined).standardizedFileURL.path
    }

    /// Why `path` cannot be read as a file, or nil when it can.
    public static func notAFolder(_ path: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "no such folder" }
        return isDirectory.boolValue ? nil : "it is a file, not a folder"
    }

    public static func unreadable(_ path: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "no such file" }
        if isDirectory.boolValue { return "it is a folder, not a file" }
        guard let handle = FileHandle(forReadingAtPath: path) else { return "cannot open it (check its permissions)" }
        try? handle.close()
        return nil
    }
}

extension SourceLocation {
    /// Given on the command line (--set, --input, --output) rather than in the file.
    public var isCommandLine: Bool { file.hasPrefix("command line") }
}
