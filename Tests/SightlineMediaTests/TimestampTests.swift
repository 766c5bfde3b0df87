import Testing
import SightlineCore
import SightlineMedia
import SightlineTestSupport

/// Our timestamps must equal ffprobe's, frame for frame, on real encoder output.
@Suite struct TimestampTests {
    static let cases: [String] = ["small", "hd", "offsetTS", "raw", "moovAtEnd"]

    static func path(_ name: String) throws -> String {
        switch name {
        case "small": try Fixtures.shared.clip(Fixtures.small)
        case "hd": try Fixtures.shared.clip(Fixtures.hd)
        case "offsetTS": try Fixtures.shared.clip(Fixtures.offsetTS)
        case "raw": try Fixtures.shared.rawH264()
        default: try Fixtures.shared.moovAtEnd()
        }
    }

    @Test(arguments: cases)
    func everyFrameMatchesFFprobe(fixture: String) throws {
        let path = try Self.path(fixture)
        let expected = try FFprobe.frames(path)
        let run = try decodeAll(path)
        #expect(run.frames.count == expected.count)
        #expect(!expected.isEmpty)
        for (ours, theirs) in zip(run.frames, expected) {
            if let best = theirs.bestEffort {
                #expect(ours.timestamp.pts == best, "frame \(ours.decodeIndex) of \(fixture)")
            }
            if let time = theirs.bestEffortTime {
                // ffprobe prints six decimals.
                #expect(abs(ours.seconds - time) < 1e-6, "frame \(ours.decodeIndex) of \(fixture)")
            }
        }
        // Presentation order: strictly increasing for these clips.
        for (a, b) in zip(run.frames, run.frames.dropFirst()) {
            #expect(a.seconds < b.seconds)
        }
    }

    @Test func bFrameClipHasReorderedPacketsButOrderedFrames() throws {
        // The fixture really has B-frames: some packet pts arrive out of order.
        let path = try Fixtures.shared.clip(Fixtures.small)
        let packets = try Tool.run("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts",
                                              "-of", "csv=p=0", path]).stdout
            .split(separator: "\n").compactMap { Int64($0) }
        #expect(packets != packets.sorted())
        let run = try decodeAll(path)
        #expect(run.frames.map(\.timestamp.pts) == packets.sorted())
    }

    @Test func streamNotStartingAtZeroKeepsItsOffset() throws {
        let run = try decodeAll(try Fixtures.shared.clip(Fixtures.offsetTS))
        let first = try #require(run.frames.first)
        // The TS muxer starts at 1.4 s; two B-frames of reorder delay put the first pts 0.08 s later.
        #expect(first.seconds >= 1.4 && first.seconds < 1.6)
        let start = try #require(run.opened.first?.startSeconds)
        #expect(abs(start - first.seconds) < 1e-6)
    }

    @Test func framesCarryIngestWallClock() throws {
        let before = Date().timeIntervalSince1970
        let run = try decodeAll(try Fixtures.shared.clip(Fixtures.small))
        let after = Date().timeIntervalSince1970
        for frame in run.frames {
            #expect(frame.ingestWallClock >= before && frame.ingestWallClock <= after)
        }
    }
}

import Foundation
