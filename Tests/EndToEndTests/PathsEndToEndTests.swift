import Foundation
import Testing
import SightlineTestSupport

/// A pipeline given by absolute path runs from any working directory: what it reads is found
/// beside it, what it writes lands where it runs (or under --output), never in Pipelines/.
@Suite(.serialized) struct PathsEndToEndTests {
    let bin = sightlineBinary()

    private func pipelinesFolderListing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/Pipelines").sorted()
    }

    @Test func understandByAbsolutePathFromAnotherFolder() throws {
        let work = Fixtures.shared.directory + "/paths-\(getpid())"
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let clip = work + "/clip.mp4"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=10", "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", clip])
        let before = try pipelinesFolderListing()
        // No --set for the policies: they are found beside the pipeline file.
        let run = try Tool.run(bin, ["run", repositoryRoot + "/Pipelines/understand.yaml", "--input", "clip.mp4",
                                     "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(freePort())", "--quiet"], in: work)
        #expect(run.stderr.contains("2 frames"), "\(run.stderr)")
        #expect(FileManager.default.fileExists(atPath: work + "/sightline-understand.jsonl"), "the output lands where sightline runs")
        let provenance = try String(contentsOfFile: work + "/sightline-understand.jsonl", encoding: .utf8)
        #expect(provenance.contains("\"url\":\"\(clip)\""), "--input is relative to the working directory")

        // --output moves every relative output.
        try Tool.run(bin, ["run", repositoryRoot + "/Pipelines/understand.yaml", "--input", clip, "--output", "run2",
                           "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(freePort())", "--quiet"], in: work)
        #expect(FileManager.default.fileExists(atPath: work + "/run2/sightline-understand.jsonl"))
        #expect(try pipelinesFolderListing() == before, "nothing is written into Pipelines/")
    }

    @Test func validateNamesAMissingFileWithItsPosition() throws {
        let work = Fixtures.shared.directory + "/paths-validate-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let pipeline = work + "/p.yaml"
        try """
        nodes:
          cam: {type: source, url: clip.mp4}
          labels: {type: labels}
          moderation:
            type: moderation
            policy: rules/missing.yaml
          out: {type: jsonl, path: out.jsonl}
        edges:
          - cam -> labels
          - labels -> moderation
          - moderation -> out
        """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let result = try Tool.run(bin, ["validate", pipeline], check: false)
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(pipeline):6:13: error: option 'policy' of node 'moderation': cannot use 'rules/missing.yaml' (\(work)/rules/missing.yaml): no such file"),
                "\(result.stderr)")
        let run = try Tool.run(bin, ["run", pipeline], check: false)
        #expect(run.status == 1 && run.stderr.contains("no such file"), "run refuses it too: \(run.stderr)")
    }
}
