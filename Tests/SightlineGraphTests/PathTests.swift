import Foundation
import Testing
@testable import SightlineGraph
import SightlineNodes

/// Files a pipeline reads resolve against its folder, what it writes against the output folder,
/// command-line values against the working directory; validate opens every file it reads.
@Suite struct PathTests {
    let registry = BuiltinNodes.registry

    /// A pipeline in its own folder with a policy beside it, and a working directory elsewhere.
    struct Layout {
        let root: String
        var pipelineFolder: String { root + "/pipelines" }
        var pipeline: String { pipelineFolder + "/p.yaml" }
        var elsewhere: String { root + "/elsewhere" }

        init(policy: String = "categories: {nsfw: {rule: nsfw, enter: 0.8}}") throws {
            root = NSTemporaryDirectory() + "sightline-paths-\(getpid())-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: root + "/pipelines", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: root + "/elsewhere", withIntermediateDirectories: true)
            try policy.write(toFile: root + "/pipelines/policy.yaml", atomically: true, encoding: .utf8)
        }

        func write(_ yaml: String) throws {
            try yaml.write(toFile: pipeline, atomically: true, encoding: .utf8)
        }
    }

    static let yaml = """
    nodes:
      cam: {type: source, url: clip.mp4}
      nsfw: {type: nsfw}
      moderation: {type: moderation, policy: policy.yaml}
      out: {type: jsonl, path: results/out.jsonl}
    edges:
      - cam -> nsfw
      - nsfw -> moderation
      - moderation -> out
    """

    private func validate(_ layout: Layout, overrides: [String] = [], output: String? = nil) throws -> Result<ValidatedPipeline, Diagnostics> {
        let (parsed, errors) = PipelineParser.parse(file: layout.pipeline)
        #expect(errors.isEmpty)
        var spec = try #require(parsed)
        for o in overrides { #expect(spec.applyOverride(o) == nil) }
        if let output { spec.applyOutput(output) }
        // As if run from somewhere else entirely.
        return PipelineValidator.validate(spec, registry: registry, workingDirectory: layout.elsewhere)
    }

    @Test func readsResolveAgainstThePipelineAndWritesAgainstTheWorkingDirectory() throws {
        let layout = try Layout()
        try layout.write(Self.yaml)
        let pipeline = try validate(layout).get()
        #expect(pipeline.node("moderation")?.options.string("policy") == layout.pipelineFolder + "/policy.yaml")
        #expect(pipeline.node("cam")?.options.string("url") == layout.pipelineFolder + "/clip.mp4")
        #expect(pipeline.node("out")?.options.string("path") == layout.elsewhere + "/results/out.jsonl")
        #expect(pipeline.node("out")?.options.outputDirectory == layout.elsewhere)
    }

    @Test func outputFolderTakesEveryRelativeOutput() throws {
        let layout = try Layout()
        try layout.write(Self.yaml)
        let pipeline = try validate(layout, output: "run1").get()
        #expect(pipeline.node("out")?.options.string("path") == layout.elsewhere + "/run1/results/out.jsonl")
        #expect(pipeline.paths.outputDirectory == layout.elsewhere + "/run1")
        // The file's own `output:` is the default; --output still wins.
        try layout.write("output: from-file\n" + Self.yaml)
        #expect(try validate(layout).get().paths.outputDirectory == layout.elsewhere + "/from-file")
        #expect(try validate(layout, output: "/abs/run").get().node("out")?.options.string("path") == "/abs/run/results/out.jsonl")
    }

    @Test func commandLineValuesResolveAgainstTheWorkingDirectory() throws {
        let layout = try Layout()
        try layout.write(Self.yaml)
        try "categories: {x: {rule: nsfw}}".write(toFile: layout.elsewhere + "/mine.yaml", atomically: true, encoding: .utf8)
        let pipeline = try validate(layout, overrides: ["moderation.policy=mine.yaml", "cam.url=rtsp://camera/1"]).get()
        #expect(pipeline.node("moderation")?.options.string("policy") == layout.elsewhere + "/mine.yaml")
        #expect(pipeline.node("cam")?.options.string("url") == "rtsp://camera/1", "URLs are left as they are")
    }

    @Test func aMissingFileIsReportedWhereItIsNamed() throws {
        let layout = try Layout()
        try layout.write(Self.yaml.replacingOccurrences(of: "policy: policy.yaml", with: "policy: nowhere.yaml"))
        guard case .failure(let d) = try validate(layout) else {
            Issue.record("a missing policy must not validate")
            return
        }
        #expect(d.items.count == 1)
        let item = try #require(d.items.first)
        #expect("\(item.location)" == layout.pipeline + ":4:42")
        #expect(item.message.contains("cannot use 'nowhere.yaml' (\(layout.pipelineFolder)/nowhere.yaml): no such file"), "\(item.message)")
        #expect(item.hint?.contains("relative to the pipeline's folder") == true)
    }

    @Test func aFileThatIsNotAPolicyIsReportedBeforeAnythingRuns() throws {
        let layout = try Layout(policy: "categories: {x: {rule: labels, classes: [not a class]}}")
        try layout.write(Self.yaml)
        guard case .failure(let d) = try validate(layout) else {
            Issue.record("a policy naming an unknown class must not validate")
            return
        }
        #expect(d.items.first?.message.contains("'not a class' is not an ImageNet class name") == true, "\(d)")
    }

    @Test func urlsAndPaths() {
        #expect(PipelinePaths.isURL("rtsp://cam/1") && PipelinePaths.isURL("udp://127.0.0.1:5000") && PipelinePaths.isURL("pipe:0"))
        #expect(!PipelinePaths.isURL("clip.mp4") && !PipelinePaths.isURL("videos/a:b.mp4") && !PipelinePaths.isURL("C:clip.mp4"))
        #expect(PipelinePaths.absolute("../x/./y.yaml", against: "/a/b") == "/a/x/y.yaml")
        #expect(PipelinePaths.absolute("/abs/y", against: "/a/b") == "/abs/y")
    }
}
