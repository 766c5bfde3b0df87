import Foundation
import Testing
@testable import SightlineNodes

/// A folder input follows symbolic links (a media library often links files and folders in),
/// takes each real file once, and a link back up the tree does not loop.
@Suite struct FolderInputTests {
    @Test func linksAreFollowedOnceWithoutLoops() throws {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("sightline-links-\(UUID().uuidString)").path
        defer { try? fm.removeItem(atPath: root) }
        let library = root + "/library", elsewhere = root + "/elsewhere"
        for dir in [library, elsewhere + "/season"] { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        for file in [library + "/a.mp4", elsewhere + "/b.mp4", elsewhere + "/season/c.mkv", library + "/notes.txt", library + "/.hidden.mp4"] {
            fm.createFile(atPath: file, contents: Data([0]))
        }
        try fm.createSymbolicLink(atPath: library + "/b-linked.mp4", withDestinationPath: elsewhere + "/b.mp4")
        try fm.createSymbolicLink(atPath: library + "/season", withDestinationPath: elsewhere + "/season")
        try fm.createSymbolicLink(atPath: library + "/a-again.mp4", withDestinationPath: library + "/a.mp4")
        try fm.createSymbolicLink(atPath: library + "/loop", withDestinationPath: root)
        try fm.createSymbolicLink(atPath: library + "/dangling.mp4", withDestinationPath: root + "/nothing.mp4")

        let files = try FilesSourceNode.inputFiles(library, extensions: FilesSourceNode.defaultExtensions)
        let names = files.map { String($0.dropFirst(library.count + 1)) }
        // a.mp4 once, by its own name (a-again.mp4 is the same file); the linked file and the
        // linked folder's file; through the loop only files already taken.
        #expect(Set(files.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path }).count == files.count, "each real file once: \(names)")
        #expect(names == ["a.mp4", "b-linked.mp4", "season/c.mkv"], "\(names)")
        #expect(!names.contains { $0.contains("hidden") || $0.contains("dangling") || $0.hasSuffix(".txt") })
    }

    /// Same-named files in different folders once shared one output and one journal line;
    /// names now mirror the path under the input folder.
    @Test func namesMirrorTheRelativePath() {
        let names = FilesSourceNode.uniqueNames(["/v/a/clip.mp4", "/v/b/clip.mp4", "/v/clip.mp4", "/elsewhere/clip.mp4", "/v/my show/ep 1.mp4"], relativeTo: "/v")
        #expect(names == ["a/clip.mp4", "b/clip.mp4", "clip.mp4", "clip.mp4~2", "my_show/ep_1.mp4"])
        #expect(FilesSourceNode.uniqueNames(["/x/a.mp4", "/y/a.mp4"]) == ["a.mp4", "a.mp4~2"], "without a base folder: file names")
    }
}
