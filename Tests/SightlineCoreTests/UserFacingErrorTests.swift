import Testing
@testable import SightlineCore

/// Errors say what went wrong and what to do, on one line; context goes in front.
@Suite struct UserFacingErrorTests {
    @Test func messageAndHintMakeOneLine() {
        let missing = SightlineError.inputNotFound(input: "/x.mp4")
        #expect(missing.message == "cannot open '/x.mp4': no such file")
        #expect(missing.hint == "check the path")
        #expect(missing.description == "cannot open '/x.mp4': no such file (check the path)")
        #expect(!missing.description.contains("\n"))
        let open = SightlineError.cannotOpen(input: "rtsp://cam", reason: "timed out")
        #expect(open.hint == nil && open.description == "cannot open 'rtsp://cam': timed out")
    }

    @Test func contextGoesInFrontAndKeepsTheHint() {
        let error = ErrorInContext("model 'open-nsfw'", SightlineError.inputNotFound(input: "photo.jpg"))
        #expect(error.message == "model 'open-nsfw': cannot open 'photo.jpg': no such file")
        #expect(error.hint == "check the path")
        struct Plain: Error, CustomStringConvertible { var description: String { "plain failure" } }
        #expect(ErrorInContext("pipeline 'p'", Plain()).description == "pipeline 'p': plain failure")
    }
}
