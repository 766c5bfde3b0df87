import Foundation
import Testing
@testable import SightlineIndex

@Suite struct ShotExportTests {
    let list = ShotList(source: "files/a.mp4", location: "/videos/a.mp4", duration: 5, shots: [
        .init(index: 0, start: 0, end: 2, caption: "A cat, \"asleep\".", labelWords: "cat", text: "", people: 0, faces: 0, flagged: false, thumbnail: "thumbnails/a/r/shot-00000.jpg"),
        .init(index: 1, start: 2, end: 4.52, caption: "A <b>rocket</b>.", labelWords: "missile", text: "LAUNCH\nT-10", people: 2, faces: 1, flagged: true, thumbnail: nil),
    ])

    @Test func csvHasPySceneDetectsColumnsAndQuotesFields() {
        let lines = ShotExport.render(list, format: .csv, fps: 25).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("Scene Number,Start Frame,Start Timecode,Start Time (seconds),End Frame,End Timecode"))
        #expect(lines[1].hasPrefix("1,1,00:00:00.000,0.000,50,00:00:02.000,2.000,50,"))
        #expect(lines[1].contains("\"A cat, \"\"asleep\"\".\""))
        #expect(lines[2].hasPrefix("2,51,00:00:02.000,2.000,113,00:00:04.520,4.520,63,"))
        #expect(lines[2].hasSuffix(",yes,2,LAUNCH / T-10"))
    }

    @Test func edlEventsHaveSourceAndRecordTimecodes() {
        let edl = ShotExport.render(list, format: .edl, fps: 25)
        #expect(edl.hasPrefix("TITLE: A.MP4\nFCM: NON-DROP FRAME\n"))
        #expect(edl.contains("001  AX       V     C        00:00:00:00 00:00:02:00 00:00:00:00 00:00:02:00\n"))
        #expect(edl.contains("002  AX       V     C        00:00:02:00 00:00:04:13 00:00:02:00 00:00:04:13\n"))
        #expect(edl.contains("* COMMENT: A <b>rocket</b>."))
    }

    @Test func otioIsATimelineWithOneClipPerShot() throws {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(ShotExport.render(list, format: .otio, fps: 25).utf8)) as? [String: Any])
        #expect(json["OTIO_SCHEMA"] as? String == "Timeline.1")
        let track = try #require(((json["tracks"] as? [String: Any])?["children"] as? [[String: Any]])?.first)
        let clips = try #require(track["children"] as? [[String: Any]])
        #expect(clips.count == 2)
        let range = try #require(clips[1]["source_range"] as? [String: Any])
        #expect((range["start_time"] as? [String: Any])?["value"] as? Double == 50)
        #expect((range["duration"] as? [String: Any])?["value"] as? Double == 63)
        let reference = ((clips[0]["media_references"] as? [String: Any])?["DEFAULT_MEDIA"] as? [String: Any])?["target_url"] as? String
        #expect(reference == "file:///videos/a.mp4")
    }

    @Test func htmlEscapesTextAndLinksThumbnails() {
        let html = ShotExport.render(list, format: .html, fps: 25, thumbnailBase: "../index/")
        #expect(html.contains("A &lt;b&gt;rocket&lt;/b&gt;."))
        #expect(!html.contains("<b>rocket"))
        #expect(html.contains("src=\"../index/thumbnails/a/r/shot-00000.jpg\""))
        #expect(html.contains("<tr class=\"flagged\">"))
    }
}
