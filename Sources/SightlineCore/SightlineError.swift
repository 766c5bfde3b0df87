/// Errors a user can act on. `description` is the one-line message the CLI prints: it names
/// the input and, where there is one, what to do about it.
public enum SightlineError: Error, Sendable, Equatable, CustomStringConvertible {
    case inputNotFound(input: String)
    case cannotOpen(input: String, reason: String)
    case noVideoStream(input: String)
    case unsupportedCodec(input: String, codec: String)
    case decoderFailed(input: String, reason: String)
    case connectionFailed(input: String, reason: String, attempts: Int)
    case invalidOption(name: String, value: String, hint: String)
    case cancelled(input: String)
    case toolFailed(command: String, reason: String)

    public var description: String {
        switch self {
        case .inputNotFound(let input):
            "cannot open '\(input)': no such file (check the path)"
        case .cannotOpen(let input, let reason):
            "cannot open '\(input)': \(reason)"
        case .noVideoStream(let input):
            "'\(input)' has no video stream (is it an audio file or not media at all?)"
        case .unsupportedCodec(let input, let codec):
            "'\(input)': no decoder for codec '\(codec)' in this FFmpeg build (transcode it, e.g. to H.264)"
        case .decoderFailed(let input, let reason):
            "'\(input)': decoder failed: \(reason)"
        case .connectionFailed(let input, let reason, let attempts):
            "'\(input)': source unreachable after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(reason) (is the sender running? raise --reconnect-attempts to wait longer)"
        case .invalidOption(let name, let value, let hint):
            "invalid value '\(value)' for \(name): \(hint)"
        case .cancelled(let input):
            "'\(input)': cancelled"
        case .toolFailed(let command, let reason):
            "\(command) failed: \(reason)"
        }
    }
}
