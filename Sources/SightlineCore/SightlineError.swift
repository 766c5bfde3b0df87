/// Errors a user can act on, naming the input and, where there is one, what to do about it.
public enum SightlineError: UserFacingError, Sendable, Equatable {
    case inputNotFound(input: String)
    case cannotOpen(input: String, reason: String)
    case noVideoStream(input: String)
    case unsupportedCodec(input: String, codec: String)
    case decoderFailed(input: String, reason: String)
    case connectionFailed(input: String, reason: String, attempts: Int)
    case invalidOption(name: String, value: String, hint: String)
    case cancelled(input: String)
    case toolFailed(command: String, reason: String)

    public var message: String {
        switch self {
        case .inputNotFound(let input): "cannot open '\(input)': no such file"
        case .cannotOpen(let input, let reason): "cannot open '\(input)': \(reason)"
        case .noVideoStream(let input): "'\(input)' has no video stream"
        case .unsupportedCodec(let input, let codec): "'\(input)': no decoder for codec '\(codec)' in this FFmpeg build"
        case .decoderFailed(let input, let reason): "'\(input)': decoder failed: \(reason)"
        case .connectionFailed(let input, let reason, let attempts):
            "'\(input)': source unreachable after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(reason)"
        case .invalidOption(let name, let value, _): "invalid value '\(value)' for \(name)"
        case .cancelled(let input): "'\(input)': cancelled"
        case .toolFailed(let command, let reason): "\(command) failed: \(reason)"
        }
    }

    public var hint: String? {
        switch self {
        case .inputNotFound: "check the path"
        case .noVideoStream: "is it an audio file or not media at all?"
        case .unsupportedCodec: "transcode it, e.g. to H.264"
        case .connectionFailed: "is the sender running? raise --reconnect-attempts to wait longer"
        case .invalidOption(_, _, let hint): hint
        case .cannotOpen, .decoderFailed, .cancelled, .toolFailed: nil
        }
    }

    /// The one-line form (logs, status messages): message and hint as before.
    public var description: String {
        switch self {
        case .invalidOption(let name, let value, let hint): "invalid value '\(value)' for \(name): \(hint)"
        default: hint.map { "\(message) (\($0))" } ?? message
        }
    }
}
