import Testing
@testable import SightlineCore

@Suite struct RationalTests {
    @Test(arguments: [
        ("30", Rational(30, 1)), ("30000/1001", Rational(30000, 1001)), ("0.5", Rational(5, 10)),
        ("29.97", Rational(2997, 100)), (" 2 ", Rational(2, 1)), (".25", Rational(25, 100)),
    ])
    func parsesRates(text: String, expected: Rational) {
        #expect(Rational(parsing: text) == expected)
    }

    @Test(arguments: ["", "abc", "1/0", "1/", "/2", "1.2.3", "1e3", "-", "0.1234567890"])
    func rejectsNonsense(text: String) {
        #expect(Rational(parsing: text) == nil)
    }

    /// Found under attack: `--fps 1000000000000000000.5` trapped (SIGILL) on whole × scale
    /// overflowing, and a whole part too large for Int64 silently became 0.
    @Test(arguments: ["1000000000000000000.5", "99999999999999999999.5", "9223372036854775807.9", "99999999999999999999"])
    func hugeNumbersAreRefusedNotTrappedOrZeroed(text: String) {
        #expect(Rational(parsing: text) == nil)
    }

    @Test func theLargestRepresentableDecimalStillParses() {
        #expect(Rational(parsing: "9223372036.854775807") == Rational(9_223_372_036_854_775_807, 1_000_000_000))
    }

    @Test func timestampsCompareExactlyAcrossTimeBases() {
        let a = Timestamp(pts: 1001, timeBase: Rational(1, 30000))  // 0.0333667 s
        let b = Timestamp(pts: 1, timeBase: Rational(1, 30))  // 0.0333333 s
        #expect(b < a)
        #expect(!(a < b))
        #expect(Timestamp(pts: 15360, timeBase: Rational(1, 15360)).seconds == 1.0)
    }
}
