import Foundation
import Testing
@testable import SightlineNodes

/// A finished output replaces the old one in one rename: at no point is there no output.
@Suite struct SourceOutputFilesTests {
    @Test func commitReplacesAtomicallyAndReportsAFailure() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sightline-commit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let files = SourceOutputFiles(folder: folder)
        try Data("old\n".utf8).write(to: files.outputURL(forSource: "files/a.mp4"))
        try Data("new\n".utf8).write(to: files.partialURL(forSource: "files/a.mp4"))
        let final = try files.commitOutput(forSource: "files/a.mp4")
        #expect(try String(contentsOf: final, encoding: .utf8) == "new\n")
        #expect(!FileManager.default.fileExists(atPath: files.partialURL(forSource: "files/a.mp4").path))
        // Nothing to commit: an error naming the output, and the finished file left alone.
        #expect(throws: (any Error).self) { try files.commitOutput(forSource: "files/a.mp4") }
        #expect(try String(contentsOf: final, encoding: .utf8) == "new\n")
    }
}
