import Foundation
import Testing
import SightlineCore
import SightlineGraph
@testable import SightlineService

/// The source list of a service as timelines of status events.
@Suite struct SourceStatusBoardTests {
    private func event(_ detail: StatusEvent.Detail, _ source: String = "cam", at time: Double) -> StatusEvent {
        StatusEvent(detail, sourceID: source, wallClock: time)
    }

    private let opened = SourceOpened(url: "udp://x", container: "mpegts", codec: "h264", width: 64, height: 48)

    @Test func anOutageCountsWhileItLastsAndOnceItEnds() {
        var board = SourceStatusBoard()
        board.added(id: "cam", url: "udp://x")
        #expect(board.list(now: 0).first?.state == .starting)
        board.apply(event(.started(opened), at: 1), now: 1)
        board.sample(framesIn: ["cam": 0], now: 1)
        board.sample(framesIn: ["cam": 10], now: 3)
        #expect(board.list(now: 3).first?.fps == 5)
        board.apply(event(.reconnecting(attempt: 1, delay: 0.5, reason: "no data"), at: 10), now: 10)
        let during = board.list(now: 14).first
        #expect(during?.state == .reconnecting && during?.gapSeconds == 4, "the current outage counts: \(String(describing: during))")
        board.apply(event(.reconnecting(attempt: 2, delay: 1, reason: "refused"), at: 12), now: 12)
        board.apply(event(.gap(afterSeconds: 9, duration: 6), at: 16), now: 16)
        let after = board.list(now: 30).first
        #expect(after?.state == .connected && after?.gapSeconds == 6 && after?.reconnects == 1)
    }

    @Test func removalEndsAndFailureIsKeptWithItsReason() {
        var board = SourceStatusBoard()
        board.added(id: "a", url: "u")
        board.added(id: "b", url: "v")
        board.apply(event(.started(opened), "a", at: 1), now: 1)
        board.removing(id: "a")
        board.apply(event(.gap(afterSeconds: 1, duration: 1), "a", at: 2), now: 2)
        #expect(board.list(now: 2).first?.state == .removing, "nothing revives a source being removed")
        board.apply(event(.endOfStream(EndOfStream(sourceID: "a", error: "cancelled"), SourceCounters()), "a", at: 3), now: 3)
        board.apply(event(.error(NodeFailure(node: "b", message: "connection refused", fatal: true)), "b", at: 3), now: 3)
        board.apply(event(.endOfStream(EndOfStream(sourceID: "b"), SourceCounters()), "b", at: 3), now: 3)
        let list = board.list(now: 4)
        #expect(list.map(\.id) == ["a", "b"])
        #expect(list[0].state == .ended)
        #expect(list[1].state == .failed && list[1].error == "connection refused")
        // Events of sources nobody added are ignored.
        board.apply(event(.started(opened), "ghost", at: 5), now: 5)
        #expect(board.list(now: 5).count == 2)
        // Re-adding a name starts afresh.
        board.added(id: "b", url: "w")
        #expect(board.list(now: 6).last?.state == .starting && board.list(now: 6).last?.error == nil)
    }

    @Test func endedSourcesAreKeptWithinABound() {
        var board = SourceStatusBoard(keepEnded: 3)
        for index in 0..<10 {
            board.added(id: "s\(index)", url: "u")
            board.apply(event(.endOfStream(EndOfStream(sourceID: "s\(index)"), SourceCounters()), "s\(index)", at: 1), now: 1)
        }
        board.added(id: "live", url: "u")
        #expect(board.list(now: 2).map(\.id) == ["s7", "s8", "s9", "live"])
    }
}

@Suite struct ServiceMetricsTests {
    @Test func countersAreMirroredAndNeverGoBack() throws {
        let yaml = """
        nodes:
          cam: {type: synthetic, count: 50, size: 8x8}
          out: {type: capture}
        edges: [cam -> out]
        """
        let spec = try #require(PipelineParser.parse(text: yaml, file: "test.yaml").0)
        guard case .success(let pipeline) = PipelineValidator.validate(spec, registry: NodeRegistry([SyntheticSource.factory, CaptureSink.factory])) else {
            Issue.record("pipeline did not validate")
            return
        }
        let runtime = try GraphRuntime(pipeline: pipeline, registry: NodeRegistry([SyntheticSource.factory, CaptureSink.factory]))
        runtime.start()
        #expect(runtime.wait(timeout: 10))
        let metrics = ServiceMetrics()
        let entry = SourceStatusBoard.Entry(id: "cam", url: "", state: .ended, gapSeconds: 0, reconnects: 0, fps: 0, framesIn: 50)
        let first = metrics.render(runtime: runtime, sources: [entry])
        #expect(first.contains("sightline_source_frames_in_total{source=\"cam\"} 50"), "\(first)")
        #expect(first.contains("sightline_node_items_total{node=\"out\"}"))
        #expect(first.contains("sightline_edge_frames_total{from=\"cam\",to=\"out\"} 50"))
        #expect(first.contains("# TYPE sightline_source_frames_in_total counter"))
        // A second scrape shows the same totals (the difference since the first is added).
        let second = metrics.render(runtime: runtime, sources: [entry])
        #expect(second.contains("sightline_source_frames_in_total{source=\"cam\"} 50"))
        // A source that is gone from the list (and the graph) takes its series with it.
        let gone = SourceStatusBoard.Entry(id: "door", url: "", state: .ended, gapSeconds: 2, reconnects: 1, fps: 0, framesIn: 9)
        #expect(metrics.render(runtime: runtime, sources: [entry, gone]).contains("sightline_source_gap_seconds{source=\"door\"}"))
        let after = metrics.render(runtime: runtime, sources: [entry])
        #expect(!after.contains("source=\"door\""), "\(after)")
        #expect(after.contains("sightline_source_frames_in_total{source=\"cam\"} 50"))
    }
}
