import Testing
@testable import SightlineNodes

@Suite struct TermMaskTests {
    @Test func wholeWordsAreMaskedWhateverTheirCaseAndSaid() {
        let mask = TermMask(terms: ["damn", "shut up", ""])
        let (text, found) = mask.apply("Damn it, damnation. Shut up! DAMN")
        #expect(text == "d*** it, damnation. s******! d***")
        #expect(found == ["damn", "shut up"])
    }

    @Test func termsWithPatternOrTemplateCharactersAreLiteral() {
        // The replacement keeps the term's first letter; "$" or "\" there must not be read as
        // a template reference, nor "." in the term as a pattern. A term that starts or ends
        // with a symbol still matches as a whole word (`\b` alone never matched "$1bet").
        let mask = TermMask(terms: ["$1bet", "c.a", "\\x"])
        #expect(mask.apply("win $1bet now").text == "win $**** now")
        #expect(mask.apply("cba c.a").text == "cba c**")
        #expect(mask.apply("a \\x b").terms == ["\\x"])
        #expect(mask.apply("nothing here") == ("nothing here", []))
    }
}
