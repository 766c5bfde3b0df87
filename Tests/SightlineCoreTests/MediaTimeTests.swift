import Testing
import SightlineCore

@Suite struct MediaTimeTests {
    @Test func timesParseAsPeopleTypeThem() {
        #expect(MediaTime.seconds(parsing: "75") == 75)
        #expect(MediaTime.seconds(parsing: "75.5") == 75.5)
        #expect(MediaTime.seconds(parsing: "1:15") == 75)
        #expect(MediaTime.seconds(parsing: "0:01:15.5") == 75.5)
        #expect(MediaTime.seconds(parsing: " 2:00:00 ") == 7200)
    }

    @Test func nonTimesAreRefused() {
        for text in ["", ":", "1:", "-5", "1:60", "1:2:3:4", "abc", "1e3", "inf", "nan", "1:-2", "1.5:00"] {
            #expect(MediaTime.seconds(parsing: text) == nil, "\(text)")
        }
    }

    @Test func timesFormatForListings() {
        #expect(MediaTime.format(3) == "0:03.0")
        #expect(MediaTime.format(75.46) == "1:15.5")
        #expect(MediaTime.format(3725) == "1:02:05.0")
        #expect(MediaTime.format(-1) == "-")
    }
}
