import CFFmpeg
import Foundation

/// Checks a source location before anything opens it, so a service can refuse a bad one at
/// once with a reason (opening itself happens later, on the source's thread, and a camera may
/// simply be down for now).
public enum MediaLocation {
    /// What is wrong with `location` as a video source, or nil when it is worth trying.
    public static func problem(_ location: String) -> String? {
        let text = location.trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return "the URL is empty" }
        guard let separator = text.range(of: "://") else {
            // A local path: it must be there and be something FFmpeg can read in order.
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: text, isDirectory: &isDirectory) else { return "no such file" }
            if isDirectory.boolValue { return "it is a folder (use a files source for folders)" }
            return FileManager.default.isReadableFile(atPath: text) ? nil : "the file is not readable"
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        guard inputSchemes.contains(scheme) else {
            return "unknown scheme '\(scheme)' (this FFmpeg reads \(inputSchemes.sorted().joined(separator: ", ")))"
        }
        if scheme == "file" { return problem(String(text[separator.upperBound...])) }
        let rest = text[separator.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let host = authority.split(separator: "@").last.map(String.init) ?? ""
        if host.isEmpty || host.hasPrefix(":") && scheme != "udp" && scheme != "rtp" {
            return "no host in the URL"
        }
        return nil
    }

    /// Input protocols this FFmpeg was built with, plus RTSP (a demuxer that speaks its own
    /// protocol rather than one of avio's).
    public static let inputSchemes: Set<String> = {
        var names: Set<String> = ["rtsp", "rtsps"]
        var iterator: UnsafeMutableRawPointer?
        while let name = avio_enum_protocols(&iterator, 0) {
            names.insert(String(cString: name))
        }
        return names
    }()
}
