import CFFmpeg
import SightlineCore

/// A failed FFmpeg call: the operation we attempted and FFmpeg's own error text.
struct FFmpegError: UserFacingError {
    let code: Int32
    let operation: String

    /// FFmpeg's own text for the code.
    var reason: String { ffmpegErrorString(code) }
    var message: String { "\(operation): \(reason)" }

    var isEndOfFile: Bool { code == SL_AVERROR_EOF }
    var isTryAgain: Bool { code == SL_AVERROR_EAGAIN }
}

func ffmpegErrorString(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    return buffer.withUnsafeMutableBufferPointer { buf -> String in
        guard let base = buf.baseAddress else { return "error \(code)" }
        _ = sl_av_err2str(code, base, buf.count)
        return String(cString: base)
    }
}

/// Errno values FFmpeg hands back as AVERROR(e).
enum POSIXCode {
    static let noEntry = sl_averror(2)  // ENOENT
    static let connectionRefused = sl_averror(111)  // ECONNREFUSED
    static let timedOut = sl_averror(110)  // ETIMEDOUT
    static let io = sl_averror(5)  // EIO
}

/// How loud FFmpeg's own logging is. The CLI keeps it quiet and reports counted errors itself.
public enum FFmpegLogLevel: String, Sendable, CaseIterable {
    case quiet, error, warning, info, debug

    public func apply() {
        let level: Int32 = switch self {
        case .quiet: AV_LOG_QUIET
        case .error: AV_LOG_ERROR
        case .warning: AV_LOG_WARNING
        case .info: AV_LOG_INFO
        case .debug: AV_LOG_DEBUG
        }
        av_log_set_level(level)
    }
}
