/// What Sightline puts in one NATS subject token, and in stream, consumer and camera names:
/// ASCII letters, digits, `_` and `-` (never `.`, `*`, `>` or white space, which NATS gives
/// meaning).
public enum SubjectToken {
    public static func allows(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "_" || character == "-")
    }

    /// Non-empty and made only of allowed characters.
    public static func isValid(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy(allows)
    }

    /// Each character that is not allowed becomes `_`.
    public static func sanitized(_ text: some StringProtocol) -> String {
        String(text.map { allows($0) ? $0 : "_" })
    }
}
