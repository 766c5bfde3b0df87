/// An error a user can act on: one line saying what went wrong, naming the input, and where
/// there is one, what to do about it. Every module's errors adopt it, and the CLI prints any of
/// them the same way, from one place: `sightline: MESSAGE (HINT)`.
public protocol UserFacingError: Error, CustomStringConvertible {
    /// What went wrong, naming the input (a file, URL, node or option).
    var message: String { get }
    /// What to do about it, when there is something to do.
    var hint: String? { get }
}

extension UserFacingError {
    public var hint: String? { nil }

    /// Message and hint on one line, as logs and status messages carry errors.
    public var description: String { hint.map { "\(message) (\($0))" } ?? message }
}

/// Another error with what it was about put in front (`model 'open-nsfw': …`), its hint kept.
public struct ErrorInContext: UserFacingError {
    public var context: String
    public var underlying: any Error

    public init(_ context: String, _ underlying: any Error) {
        self.context = context
        self.underlying = underlying
    }

    public var message: String { "\(context): \((underlying as? UserFacingError)?.message ?? "\(underlying)")" }
    public var hint: String? { (underlying as? UserFacingError)?.hint }
}
