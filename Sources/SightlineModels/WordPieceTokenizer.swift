import Foundation

/// BERT's tokenizer, driven by the model's own files: `vocab.txt` (one token per line, line
/// number = id) and the normalizer settings in `tokenizer.json`.
///
/// Steps, as BERT defines them: clean the text (drop control characters and U+FFFD, turn
/// whitespace into spaces), put spaces around CJK ideographs, lower-case and strip accents
/// (NFD, then drop combining marks), split on whitespace and on every punctuation character,
/// then WordPiece each word greedily (longest vocabulary match first, continuations prefixed
/// `##`, words longer than 100 characters or with no match become [UNK]), and frame the result
/// as [CLS] … [SEP], truncated so the whole sequence fits `maxLength`.
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: [String: Int32]
    public let lowercase: Bool
    public let stripAccents: Bool
    public let handleChineseCharacters: Bool
    public let maxLength: Int
    public let unknownID: Int32, clsID: Int32, sepID: Int32, padID: Int32
    let continuationPrefix = "##"
    let maxCharactersPerWord = 100

    public init(vocabularyFile: String, tokenizerJSON: String?, maxLength: Int) throws {
        guard let text = try? String(contentsOfFile: vocabularyFile, encoding: .utf8) else {
            throw ModelStoreError.notFetched(name: "vocabulary", path: vocabularyFile)
        }
        var vocabulary: [String: Int32] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let token = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            if !token.isEmpty && vocabulary[token] == nil { vocabulary[token] = Int32(index) }
        }
        var lowercase = true
        var stripAccents: Bool? = nil
        var chinese = true
        if let tokenizerJSON, let data = FileManager.default.contents(atPath: tokenizerJSON),
           let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let normalizer = json["normalizer"] as? [String: Any] {
            lowercase = normalizer["lowercase"] as? Bool ?? true
            stripAccents = normalizer["strip_accents"] as? Bool
            chinese = normalizer["handle_chinese_chars"] as? Bool ?? true
        }
        try self.init(vocabulary: vocabulary, lowercase: lowercase, stripAccents: stripAccents ?? lowercase,
                      handleChineseCharacters: chinese, maxLength: maxLength)
    }

    public init(vocabulary: [String: Int32], lowercase: Bool = true, stripAccents: Bool = true,
                handleChineseCharacters: Bool = true, maxLength: Int = 256) throws {
        func id(_ token: String) throws -> Int32 {
            guard let id = vocabulary[token] else { throw ModelStoreError.notFetched(name: "vocabulary entry \(token)", path: "vocab.txt") }
            return id
        }
        self.vocabulary = vocabulary
        self.lowercase = lowercase
        self.stripAccents = stripAccents
        self.handleChineseCharacters = handleChineseCharacters
        self.maxLength = max(maxLength, 2)
        unknownID = try id("[UNK]")
        clsID = try id("[CLS]")
        sepID = try id("[SEP]")
        padID = vocabulary["[PAD]"] ?? 0
    }

    /// Token ids including [CLS] and [SEP], at most `maxLength` of them.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = [clsID]
        for word in basicTokens(text) {
            ids.append(contentsOf: wordPiece(word))
            if ids.count >= maxLength - 1 { break }
        }
        if ids.count > maxLength - 1 { ids.removeLast(ids.count - (maxLength - 1)) }
        ids.append(sepID)
        return ids
    }

    /// The words BERT's basic tokenizer produces (normalised, split on spaces and punctuation).
    public func basicTokens(_ text: String) -> [String] {
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { continue }
            if Self.isWhitespace(scalar) {
                cleaned.append(" ")
            } else if handleChineseCharacters && Self.isCJK(scalar) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        var words: [String] = []
        for piece in String(cleaned).split(separator: " ", omittingEmptySubsequences: true) {
            var word = String(piece)
            if lowercase { word = word.lowercased() }
            if stripAccents {
                word = String(String.UnicodeScalarView(word.decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                    $0.properties.generalCategory != .nonspacingMark
                }))
            }
            // Every punctuation character is a word of its own.
            var current = String.UnicodeScalarView()
            for scalar in word.unicodeScalars {
                if Self.isPunctuation(scalar) {
                    if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() }
                    words.append(String(scalar))
                } else {
                    current.append(scalar)
                }
            }
            if !current.isEmpty { words.append(String(current)) }
        }
        return words
    }

    /// Greedy longest-match-first WordPiece of one word.
    func wordPiece(_ word: String) -> [Int32] {
        let scalars = Array(word.unicodeScalars)
        if scalars.count > maxCharactersPerWord { return [unknownID] }
        var pieces: [Int32] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: Int32?
            while start < end {
                var candidate = String(String.UnicodeScalarView(scalars[start..<end]))
                if start > 0 { candidate = continuationPrefix + candidate }
                if let id = vocabulary[candidate] { found = id; break }
                end -= 1
            }
            guard let found else { return [unknownID] }
            pieces.append(found)
            start = end
        }
        return pieces
    }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        let category = s.properties.generalCategory
        return category == .control || category == .format
    }

    /// BERT counts every non-alphanumeric ASCII symbol as punctuation, plus Unicode P*.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK Unified Ideograph blocks BERT splits character by character.
    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
