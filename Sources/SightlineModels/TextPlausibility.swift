import Foundation
import SightlineInference

/// Decides whether an OCR reading is plausible text or junk (a logo read as "®", a texture
/// read as "e / 6", a bullet read as "■"): confidence, length, the script's characters, and
/// for Latin text a word list. Numbers and codes ("EXIT 12B", "A4", "$5.99", "2024") stay.
/// Pure; every rejection has a reason, published by the `ocr` node so nothing is dropped silently.
public struct TextPlausibility: Sendable {
    public enum Rejection: String, Sendable, Equatable {
        case lowConfidence = "low_confidence"
        case tooShort = "too_short"
        case symbols
        case noWords = "no_words"
    }

    /// Readings below this confidence are dropped.
    public var minConfidence: Double
    /// Lower-cased words (at least two letters) that count as real words in Latin script.
    public let words: Set<String>

    public init(minConfidence: Double = 0.6, words: Set<String>) {
        self.minConfidence = minConfidence
        self.words = words
    }

    /// The word list in `path` (one word per line, as Debian's wamerican `/usr/share/dict/words`):
    /// possessives dropped, lower-cased, two letters or more.
    public static func wordList(path: String) throws -> Set<String> {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = attributes[.size] as? Int else {
            throw ModelError.missing("word list \(path) (Debian's wamerican package; Scripts/setup installs it)")
        }
        guard size <= 64 << 20 else { throw ModelError.malformed("word list \(path) is \(size) bytes; more than 64 MiB is not a word list") }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var words = Set<String>()
        for line in text.split(whereSeparator: \.isNewline) where !line.hasSuffix("'s") && line.count >= 2 {
            words.insert(line.lowercased())
        }
        return words
    }

    /// Nil when the line is plausible text; otherwise why not.
    public func rejection(_ text: String, confidence: Double) -> Rejection? {
        if confidence < minConfidence { return .lowConfidence }
        let characters = text.filter { !$0.isWhitespace }
        let alphanumeric = characters.filter { $0.isLetter || $0.isNumber }
        if alphanumeric.count < 2 { return .tooShort }
        // Mostly symbols ("■ ® ~"), or letters and digits from scripts that do not mix.
        if Double(alphanumeric.count) < 0.6 * Double(characters.count) { return .symbols }
        let latin = alphanumeric.unicodeScalars.filter { $0.properties.isAlphabetic && $0.value < 0x250 }.count
        let cjk = alphanumeric.unicodeScalars.filter { Self.isCJK($0) }.count
        let digits = alphanumeric.filter(\.isNumber).count
        if latin + cjk + digits < alphanumeric.count { return .symbols }
        // One character over and over ("米米", "IIII", "1111"): a lattice or a texture.
        if Set(alphanumeric.lowercased()).count < 2 { return .symbols }
        if cjk > 0 {
            // Chinese and Japanese text has no word list here: two or more CJK characters and
            // little else.
            // The recogniser misreads lattices and foliage as CJK characters: it must be sure.
            if confidence < max(minConfidence, 0.85) { return .lowConfidence }
            return cjk >= 2 && latin <= cjk ? nil : .noWords
        }
        let tokens = text.split(whereSeparator: { $0.isWhitespace || $0 == "/" || $0 == "|" })
        return tokens.contains(where: isWordOrCode) ? nil : .noWords
    }

    /// A dictionary word of two letters or more, or a number or code of two characters or more
    /// with a digit in it ("12B", "A4", "3.5", "$20", "2024-05").
    func isWordOrCode(_ token: Substring) -> Bool {
        let core = token.trimmingCharacters(in: CharacterSet.punctuationCharacters.union(.symbols))
        guard core.count >= 2 else { return false }
        if core.contains(where: \.isNumber) {
            return core.allSatisfy { $0.isLetter || $0.isNumber || ".,:-/%".contains($0) }
                && core.filter(\.isLetter).count <= 3
        }
        guard core.allSatisfy({ $0.isLetter || $0 == "-" || $0 == "'" }) else { return false }
        let lower = core.lowercased()
        if words.contains(lower) { return true }
        // Hyphenated compounds and plurals the list spells differently.
        let parts = lower.split(separator: "-")
        if parts.count > 1 && parts.allSatisfy({ words.contains(String($0)) }) { return true }
        return lower.hasSuffix("s") && words.contains(String(lower.dropLast()))
    }

    static func isCJK(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x3040...0x30FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF, 0xAC00...0xD7AF: true
        default: false
        }
    }
}
