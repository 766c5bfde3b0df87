import ArgumentParser
import Dispatch
import Foundation
import SightlineCore
import SightlineMedia

/// A file of the repository: beside the built binary (.build/<config>/sightline), else
/// relative to the working directory.
func repositoryFile(_ relative: String) -> String {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("../../../" + relative).standardized.path
    if FileManager.default.fileExists(atPath: beside) { return beside }
    // A copy of the binary elsewhere, run from the repository: absolute, because the path may
    // go into a generated pipeline file, which resolves relative paths against its own folder.
    return URL(fileURLWithPath: relative, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)).standardized.path
}

/// Where fetched samples and benchmark clips live: $SIGHTLINE_CACHE or ~/.cache/sightline.
func cacheRoot() -> String {
    ProcessInfo.processInfo.environment["SIGHTLINE_CACHE"] ?? (NSHomeDirectory() + "/.cache/sightline")
}

/// A command's own error (not a module's): what went wrong and what to do.
struct CommandError: UserFacingError {
    var message: String
    var hint: String?

    init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("sightline: \(message)\n".utf8))
}

/// A status event worth a line on stderr while a pipeline runs: errors, losses, gaps.
@Sendable func echoTrouble(_ status: StatusEvent) {
    let source = status.sourceID.map { "'\($0)'" } ?? "pipeline"
    switch status.detail {
    case .error(let failure): printError("\(source): \(failure.message) (node \(failure.node))")
    case .reconnecting(_, _, let reason): printError("\(source): source lost (\(reason)); reconnecting")
    case .gap(_, let duration): printError("\(source): back after \(String(format: "%.2f", duration)) s gap")
    default: break
    }
}

/// SIGINT/SIGTERM call `onSignal` (once) instead of killing the process, so sources can flush.
final class SignalTrap: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []

    init(onSignal: @escaping @Sendable () -> Void) {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler(handler: onSignal)
            source.resume()
            sources.append(source)
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }
}

extension DecodeMode: ExpressibleByArgument {}
extension DecodeQuality: ExpressibleByArgument {}
extension ResizeMode: ExpressibleByArgument {}
extension PixelFormat: ExpressibleByArgument {}
extension FFmpegLogLevel: ExpressibleByArgument {}

extension Rational: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension FrameSize: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

/// "key=value" pairs passed to FFmpeg as AVOptions.
struct KeyValue: ExpressibleByArgument, Sendable {
    var key: String
    var value: String

    init?(argument: String) {
        guard let eq = argument.firstIndex(of: "="), eq != argument.startIndex else { return nil }
        key = String(argument[..<eq])
        value = String(argument[argument.index(after: eq)...])
    }
}

func formatSeconds(_ value: Double?) -> String {
    guard let value else { return "n/a" }
    return String(format: "%.3f s", value)
}

/// CPU time of the child processes this one has waited for, user and system, in seconds: a
/// child's work whatever else the machine was doing meanwhile.
func childrenCPUSeconds() -> (user: Double, system: Double) {
    var usage = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &usage)
    return (Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6,
            Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6)
}

/// The CPU's model name, for benchmark headers (which machine the numbers are from).
func cpuName() -> String {
    (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)).flatMap { $0.split(separator: "\n").first { $0.hasPrefix("model name") } }
        .map { String($0.split(separator: ":").last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
}
