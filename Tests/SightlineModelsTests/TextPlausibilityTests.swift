import Testing
@testable import SightlineModels

/// Junk OCR readings are dropped with a reason; words, numbers and codes stay.
@Suite struct TextPlausibilityTests {
    let filter = TextPlausibility(minConfidence: 0.6, words: try! TextPlausibility.wordList(path: "/usr/share/dict/words"))

    @Test(arguments: [
        ("■", TextPlausibility.Rejection.tooShort), ("®", .tooShort), ("e / 6", .noWords), ("~~ ** ~~", .tooShort),
        ("■■ A1 ®®", .symbols), ("xqzt vbnm", .noWords), ("米米", .symbols), ("IIII", .symbols), ("宽师食", .lowConfidence),
    ])
    func junkIsDropped(text: String, reason: TextPlausibility.Rejection) {
        #expect(filter.rejection(text, confidence: 0.8) == reason, "\(text)")
    }

    @Test(arguments: ["TAXI", "EXIT 12B", "A4", "$5.99", "2024", "BREAKING NEWS", "Oh damn, 3 to 1", "well-known", "STOP", "Tickets",
                      "日本語", "DIRECTED BY SASHA LOPEZ"])
    func plausibleTextStays(text: String) {
        #expect(filter.rejection(text, confidence: 0.9) == nil, "\(text)")
    }

    @Test func confidenceComesFirst() {
        #expect(filter.rejection("TAXI", confidence: 0.5) == .lowConfidence)
    }

    @Test func aMissingWordListIsAClearError() {
        #expect(throws: (any Error).self) { try TextPlausibility.wordList(path: "/nonexistent/words") }
    }
}
