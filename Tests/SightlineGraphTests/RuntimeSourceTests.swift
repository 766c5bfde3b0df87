import Foundation
import Testing
import SightlineCore
@testable import SightlineGraph

/// Sources added and removed while a graph runs (what `sightline serve` does over HTTP).
@Suite struct RuntimeSourceTests {
    private func runtime(sinkID: String) throws -> GraphRuntime {
        let yaml = """
        nodes:
          cam: {type: synthetic, count: 5, size: 8x8}
          \(sinkID): {type: capture}
        edges: [cam -> \(sinkID)]
        """
        let registry = NodeRegistry([SyntheticSource.factory, CaptureSink.factory])
        let spec = try #require(PipelineParser.parse(text: yaml, file: "test.yaml").0)
        guard case .success(let pipeline) = PipelineValidator.validate(spec, registry: registry) else { throw SourceControlError.badID("pipeline") }
        return try GraphRuntime(pipeline: pipeline, registry: registry)
    }

    private func frames(_ sink: String, _ source: String) -> Int {
        CaptureSink.items(for: sink).filter { if case .frame(let f) = $0 { f.sourceID == source } else { false } }.count
    }

    private func ended(_ sink: String) -> [String] {
        CaptureSink.items(for: sink).compactMap { if case .endOfStream(let e) = $0 { e.sourceID } else { nil } }
    }

    @Test func sourcesComeAndGoWhileTheGraphStaysOpen() throws {
        let sink = "sink-\(UUID().uuidString)"
        let graph = try runtime(sinkID: sink)
        try graph.holdOpen(template: "cam", startFileSources: false)
        graph.start()
        try graph.addSource(id: "a", template: "cam", options: graph.sourceOptions(template: "cam", overrides: ["count": "30", "realtime": "true", "fps": "30"]))
        try graph.addSource(id: "b", template: "cam", options: graph.sourceOptions(template: "cam", overrides: ["count": "20", "realtime": "true", "fps": "1000"]))
        // "a" runs for about a second (realtime at 30 fps), so it is still running here even on a loaded machine.
        #expect(throws: SourceControlError.duplicate("a")) {
            try graph.addSource(id: "a", template: "cam", options: graph.sourceOptions(template: "cam", overrides: [:]))
        }
        #expect(throws: SourceControlError.badID("_x")) { try graph.addSource(id: "_x", template: "cam", options: graph.sourceOptions(template: "cam", overrides: [:])) }
        #expect(throws: SourceControlError.self) { _ = try graph.sourceOptions(template: "cam", overrides: ["count": "many"]) }
        #expect(throws: SourceControlError.self) { _ = try graph.sourceOptions(template: "cam", overrides: ["colour": "red"]) }
        #expect(throws: SourceControlError.self) { _ = try graph.sourceOptions(template: "sink", overrides: [:]) }

        let deadline = Date().addingTimeInterval(10)
        while Set(ended(sink)) != ["a", "b"], Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(frames(sink, "a") == 30 && frames(sink, "b") == 20)
        #expect(Set(ended(sink)) == ["a", "b"])
        #expect(!graph.wait(timeout: 0.3), "with every source ended, a service stays open")

        // A name can be used again once its source ended; a running one can be removed.
        try graph.addSource(id: "a", template: "cam", options: graph.sourceOptions(template: "cam", overrides: ["count": "100000000"]))
        // Adding let go of the ended sources: their queues are gone from the graph.
        #expect(graph.edgeStats().filter { $0.from == "b" }.isEmpty, "ended sources' queues are released")
        #expect(graph.edgeStats().filter { $0.from == "a" }.count == 1)
        while frames(sink, "a") < 40, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        try graph.removeSource(id: "a")
        while ended(sink).filter({ $0 == "a" }).count < 2, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(ended(sink).filter { $0 == "a" }.count == 2)
        #expect(!graph.isRunning(source: "a"))
        #expect(throws: SourceControlError.unknown("a")) { try graph.removeSource(id: "a") }

        #expect(graph.stop(drainTimeout: 5))
        #expect(!ended(sink).contains("cam") && !ended(sink).contains(GraphRuntime.holdSourceID), "templates and the hold stay silent")
        #expect(frames(sink, "cam") == 0, "the file's source did not run")
    }
}
