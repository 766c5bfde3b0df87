import Foundation
import Testing
@testable import SightlineGraph
import SightlineNodes

/// Validation errors point at the exact line and column, with a hint.
@Suite struct ValidatorTests {
    let registry = BuiltinNodes.registry

    private func diagnostics(_ yaml: String) -> [Diagnostic] {
        let (spec, parseErrors) = PipelineParser.parse(text: yaml, file: "p.yaml")
        guard let spec, parseErrors.isEmpty else { return parseErrors }
        switch PipelineValidator.validate(spec, registry: registry) {
        case .success: return []
        case .failure(let d): return d.items
        }
    }

    private func position(_ d: Diagnostic?) -> String? { d.map { "\($0.location.line):\($0.location.column)" } }

    static let good = """
    pipeline: demo
    nodes:
      cam1: {type: source, url: a.mp4, fps: 2}
      stats: {type: frame_stats}
      out: {type: jsonl, path: out.jsonl}
    edges:
      - cam1 -> stats
      - stats -> out
    """

    @Test func validPipelinePasses() {
        #expect(diagnostics(Self.good).isEmpty)
    }

    @Test func unknownNodeTypeWithSuggestion() {
        let d = diagnostics("""
        nodes:
          cam1: {type: source, url: a.mp4}
          stats:
            type: frame_stat
          out: {type: jsonl, path: o}
        edges:
          - cam1 -> stats
          - stats -> out
        """)
        #expect(d.count == 1)
        #expect(position(d.first) == "4:11")
        #expect(d.first?.message.contains("unknown node type 'frame_stat'") == true)
        #expect(d.first?.hint?.contains("did you mean 'frame_stats'") == true)
    }

    @Test func unknownOptionWrongTypeAndRange() {
        let d = diagnostics("""
        nodes:
          cam1:
            type: source
            url: a.mp4
            fsp: 2
            threads: many
            every: 0
          out: {type: jsonl, path: o}
        edges:
          - cam1 -> out
        """)
        #expect(d.map { position($0) } == ["5:10", "6:14", "7:12"])
        #expect(d[0].message.contains("unknown option 'fsp'"))
        #expect(d[0].hint?.contains("did you mean 'fps'") == true)
        #expect(d[1].message.contains("expected an integer, got 'many'"))
        #expect(d[2].message.contains("out of range"))
        #expect(d[2].hint?.contains("1 .. 1000000") == true)
    }

    /// A rate whose whole part overflows is reported at its line, not trapped (once a SIGILL).
    @Test func hugeRateIsAnErrorAtItsLine() {
        let d = diagnostics("""
        nodes:
          cam1: {type: source, url: a.mp4, fps: 1000000000000000000.5}
          out: {type: jsonl, path: o}
        edges:
          - cam1 -> out
        """)
        #expect(d.count == 1 && d.first?.location.line == 2)
        #expect(d.first?.message.contains("expected a rate") == true)
    }

    /// Duplicate keys are reported where the second one is, with the first one's line (the
    /// YAML parser's own message pointed at 1:1).
    @Test func duplicateKeysAreReportedAtTheirLine() {
        let option = diagnostics("""
        nodes:
          cam1:
            type: source
            url: a.mp4
            fps: 2
            fps: 5
          out: {type: jsonl, path: o}
        edges:
          - cam1 -> out
        """)
        #expect(option.map { position($0) } == ["6:5"], "\(option.map(\.message))")
        #expect(option.first?.message == "duplicate key 'fps'" && option.first?.hint?.contains("line 5") == true)
        let top = diagnostics("""
        nodes:
          cam1: {type: source, url: a.mp4}
          out: {type: jsonl, path: o}
        edges:
          - cam1 -> out
        edges:
          - cam1 -> out
        """)
        #expect(top.map { position($0) } == ["6:1"], "\(top.map(\.message))")
        #expect(top.first?.hint?.contains("line 4") == true)
    }

    /// A 50,000-node chain: the cycle finder is iterative (no stack overflow), finds a cycle
    /// closing at the far end, and finds none in the plain chain.
    @Test func longChainsDoNotExhaustTheStack() {
        let n = 50_000
        let ids = (0..<n).map { "p\($0)" }
        var edges = (0..<(n - 1)).map { ValidatedPipeline.ResolvedEdge(from: ids[$0], to: ids[$0 + 1], policy: .block, capacity: 4) }
        #expect(PipelineValidator.findCycle(nodes: ids, edges: edges) == nil)
        edges.append(.init(from: ids[n - 1], to: ids[n - 3], policy: .block, capacity: 4))
        #expect(PipelineValidator.findCycle(nodes: ids, edges: edges) == [ids[n - 3], ids[n - 2], ids[n - 1], ids[n - 3]])
    }

    /// Contracts see what any node upstream produces, however far: moderation after a long run
    /// of passthroughs behind nsfw is satisfied; without nsfw it is not.
    @Test func contractsLookFarUpstream() {
        func pipeline(withNSFW: Bool) -> String {
            var lines = ["nodes:", "  cam1: {type: synthetic}"]
            if withNSFW { lines.append("  nsfw: {type: nsfw, fetch: false}") }
            lines += (0..<300).map { "  p\($0): {type: passthrough}" } + ["  mod: {type: moderation}", "  out: {type: null}", "edges:"]
            lines.append(withNSFW ? "  - cam1 -> nsfw" : "  - cam1 -> p0")
            if withNSFW { lines.append("  - nsfw -> p0") }
            lines += (0..<299).map { "  - p\($0) -> p\($0 + 1)" } + ["  - p299 -> mod", "  - mod -> out"]
            return lines.joined(separator: "\n")
        }
        #expect(diagnostics(pipeline(withNSFW: true)).isEmpty, "\(diagnostics(pipeline(withNSFW: true)).map(\.message))")
        #expect(diagnostics(pipeline(withNSFW: false)).first?.message.contains("node 'mod' (moderation) needs") == true)
    }

    @Test func missingRequiredOption() {
        let d = diagnostics("""
        nodes:
          cam1: {type: source}
          out: {type: jsonl, path: o}
        edges:
          - cam1 -> out
        """)
        #expect(d.count == 1)
        #expect(position(d.first) == "2:3")
        #expect(d.first?.message.contains("needs option 'url'") == true)
    }

    @Test func danglingEdge() {
        let d = diagnostics("""
        nodes:
          cam1: {type: source, url: a}
          out: {type: jsonl, path: o}
        edges:
          - cam1 -> out
          - cam1 -> stast
        """)
        #expect(d.count == 1)
        #expect(position(d.first) == "6:5")
        #expect(d.first?.message.contains("dangling edge cam1 -> stast: no node 'stast'") == true)
    }

    @Test func cycle() {
        let d = diagnostics("""
        nodes:
          cam1: {type: source, url: a}
          a: {type: passthrough}
          b: {type: passthrough}
          out: {type: jsonl, path: o}
        edges:
          - cam1 -> a
          - a -> b
          - b -> a
          - b -> out
        """)
        #expect(d.count == 1)
        #expect(position(d.first) == "9:5")
        #expect(d.first?.message == "cycle: a -> b -> a")
    }

    @Test func noSink() {
        let d = diagnostics("""
        nodes:
          cam1: {type: source, url: a}
          a: {type: passthrough}
        edges:
          - cam1 -> a
        """)
        #expect(d.contains { $0.message.contains("no sink") && position($0) == "1:1" })
    }

    @Test func yamlSyntaxErrorHasPosition() {
        let d = diagnostics("""
        nodes:
          cam1: {type: source, url: a
        edges: []
        """)
        #expect(d.count == 1)
        #expect(d.first?.message.hasPrefix("YAML syntax") == true)
        #expect((d.first?.location.line ?? 0) >= 2)
    }

    @Test func everyErrorAtOnce() {
        let d = diagnostics("""
        nodes:
          cam1: {type: source, url: a, fps: -1}
          x: {type: nope}
          out: {type: jsonl, path: o}
        edges:
          - cam1 -> out
          - cam1 -> ghost
        """)
        #expect(d.count == 3)
        #expect(d.map { position($0) } == ["2:37", "3:13", "7:5"])
    }

    @Test func edgeIntoSourceAndOutOfSink() {
        let d = diagnostics("""
        nodes:
          cam1: {type: source, url: a}
          out: {type: jsonl, path: o}
        edges:
          - cam1 -> out
          - out -> cam1
        """)
        #expect(d.count == 1)
        #expect(d.first?.message.contains("leaves sink 'out'") == true)
    }

    @Test func commandLineOverridesAreCheckedToo() {
        var (spec, _) = PipelineParser.parse(text: Self.good, file: "p.yaml")
        #expect(spec?.applyOverride("cam1.fps=zero") == nil)
        #expect(spec?.applyOverride("ghost.fps=1")?.message.contains("no node 'ghost'") == true)
        guard let spec else { return }
        guard case .failure(let d) = PipelineValidator.validate(spec, registry: registry) else {
            Issue.record("bad override accepted")
            return
        }
        #expect(d.items.first?.location.file == "command line (--set cam1.fps=zero)")
    }

    @Test func inputOverrideNeedsIDWithSeveralSources() {
        var (spec, _) = PipelineParser.parse(text: """
        nodes:
          cam1: {type: source, url: a}
          cam2: {type: source, url: b}
          out: {type: jsonl, path: o}
        edges:
          - cam1 -> out
          - cam2 -> out
        """, file: "p.yaml")
        #expect(spec?.applyInput("x.mp4")?.message.contains("has 2 sources") == true)
        #expect(spec?.applyInput("cam2=rtsp://h/s") == nil)
        #expect(spec?.node("cam2")?.option("url")?.value == "rtsp://h/s")
    }

    @Test func hashChangesWithOptions() throws {
        let (a, _) = PipelineParser.parse(text: Self.good, file: "p.yaml")
        var b = try #require(a)
        _ = b.applyOverride("cam1.fps=3")
        let ha = try PipelineValidator.validate(#require(a), registry: registry).get().hash
        let hb = try PipelineValidator.validate(b, registry: registry).get().hash
        #expect(ha != hb)
        #expect(ha.count == 64)
    }
}

/// Node contracts: a node whose needs nothing upstream provides is reported where it is
/// declared (or at the option that creates the need), with what to add.
@Suite struct ContractTests {
    let registry = BuiltinNodes.registry

    private func diagnostics(_ nodes: String, _ chain: [String]) -> [Diagnostic] {
        var edges = zip(chain, chain.dropFirst()).map { "  - \($0) -> \($1)" }
        edges.append("  - \(chain.last ?? "cam") -> out")
        let yaml = "nodes:\n  cam: {type: source, url: a.mp4}\n" + nodes + "\n  out: {type: jsonl, path: o.jsonl}\nedges:\n" + edges.joined(separator: "\n")
        let (spec, parseErrors) = PipelineParser.parse(text: yaml, file: "p.yaml")
        guard let spec, parseErrors.isEmpty else { return parseErrors }
        switch PipelineValidator.validate(spec, registry: registry) {
        case .success: return []
        case .failure(let d): return d.items
        }
    }

    @Test func moderationWithNothingThatScores() {
        let d = diagnostics("  stats: {type: frame_stats}\n  moderation: {type: moderation}", ["cam", "stats", "moderation"])
        #expect(d.count == 1)
        #expect(d.first?.location.line == 4 && d.first?.location.column == 3)
        #expect(d.first?.message == "node 'moderation' (moderation) needs `nsfw`, `labels`, `ocr` or `transcripts` results, and no node before it produces them")
        #expect(d.first?.hint?.contains("produced by: labels, nsfw, ocr") == true, "\(d.first?.hint ?? "")")
        // Any one of them upstream is enough.
        #expect(diagnostics("  nsfw: {type: nsfw}\n  moderation: {type: moderation}", ["cam", "nsfw", "moderation"]).isEmpty)
    }

    @Test func deltaWithoutARegionsNodeIsReportedAtTheOption() {
        let d = diagnostics("  labels:\n    type: labels\n    delta: true", ["cam", "labels"])
        #expect(d.count == 1)
        #expect(d.first.map { "\($0.location.line):\($0.location.column)" } == "5:12", "at `delta: true`")
        #expect(d.first?.message.contains("needs `regions` results (it has delta: true)") == true)
        #expect(d.first?.hint?.contains("set delta: false") == true)
        #expect(diagnostics("  regions: {type: regions}\n  labels: {type: labels, delta: true}", ["cam", "regions", "labels"]).isEmpty)
        #expect(diagnostics("  labels: {type: labels, delta: false}", ["cam", "labels"]).isEmpty)
    }

    @Test func captionsWithoutLabelsOrShots() {
        let noLabels = diagnostics("  shots: {type: shots}\n  ocr: {type: ocr}\n  captions: {type: captions}", ["cam", "shots", "ocr", "captions"])
        #expect(noLabels.map(\.message) == ["node 'captions' (captions) needs `labels` results, and no node before it produces them"])
        let noShots = diagnostics("  labels: {type: labels}\n  captions: {type: captions}", ["cam", "labels", "captions"])
        #expect(noShots.map(\.message) == ["node 'captions' (captions) needs `shots` results (it has window: 0.0), and no node before it produces them"])
        #expect(diagnostics("  labels: {type: labels}\n  captions: {type: captions, window: 4}", ["cam", "labels", "captions"]).isEmpty)
    }

    @Test func labelsAfterTheCaptionsNodeDoNotCount() {
        // Upstream means before it on some path, not anywhere in the file.
        let d = diagnostics("  shots: {type: shots}\n  captions: {type: captions}\n  labels: {type: labels}", ["cam", "shots", "captions", "labels"])
        #expect(d.map(\.message) == ["node 'captions' (captions) needs `labels` results, and no node before it produces them"])
    }

    @Test func segmentEmbeddingsWithoutEmbeddings() {
        let d = diagnostics("  shots: {type: shots}\n  labels: {type: labels}\n  segments: {type: segment_embeddings}", ["cam", "shots", "labels", "segments"])
        #expect(d.map(\.message) == ["node 'segments' (segment_embeddings) needs `embeddings` results, and no node before it produces them"])
        #expect(d.first?.hint?.contains("labels with embeddings: true") == true)
        let ok = diagnostics("  shots: {type: shots}\n  labels: {type: labels, embeddings: true}\n  segments: {type: segment_embeddings}",
                             ["cam", "shots", "labels", "segments"])
        #expect(ok.isEmpty)
    }

    @Test func semanticWaitingForTextThatNeverComes() {
        let d = diagnostics("  labels: {type: labels, embeddings: true}\n  semantic: {type: semantic}", ["cam", "labels", "semantic"])
        #expect(d.map(\.message) == ["node 'semantic' (semantic) needs `ocr` results (it has with_text: true), and no node before it produces them"])
        #expect(diagnostics("  labels: {type: labels, embeddings: true}\n  semantic: {type: semantic, with_text: false}", ["cam", "labels", "semantic"]).isEmpty)
    }

    @Test func semanticBlendWithoutTheVisualFeature() {
        let d = diagnostics("  labels: {type: labels}\n  semantic: {type: semantic, with_text: false}", ["cam", "labels", "semantic"])
        #expect(d.map(\.message) == ["node 'semantic' (semantic) needs `embeddings` results (it has method: blend), and no node before it produces them"])
        #expect(d.first?.hint?.contains("embeddings: true") == true)
        #expect(diagnostics("  labels: {type: labels}\n  semantic: {type: semantic, with_text: false, method: conse}", ["cam", "labels", "semantic"]).isEmpty)
    }

    @Test func aNeedMetOnAnotherBranchOfAFanIn() {
        let yaml = """
        nodes:
          cam: {type: source, url: a.mp4}
          nsfw: {type: nsfw}
          stats: {type: frame_stats}
          moderation: {type: moderation}
          out: {type: jsonl, path: o.jsonl}
        edges:
          - cam -> nsfw
          - cam -> stats
          - nsfw -> moderation
          - stats -> moderation
          - moderation -> out
        """
        let (spec, _) = PipelineParser.parse(text: yaml, file: "p.yaml")
        #expect((try? PipelineValidator.validate(#require(spec), registry: registry).get()) != nil)
    }

    @Test func everyShippedPipelineMeetsItsContracts() throws {
        for name in ["batch", "live", "live-stats", "moderation", "stats", "understand"] {
            let (spec, errors) = PipelineParser.parse(file: repositoryFolder + "/Pipelines/\(name).yaml")
            #expect(errors.isEmpty)
            let result = PipelineValidator.validate(try #require(spec), registry: registry)
            if case .failure(let d) = result { Issue.record("\(name).yaml: \(d)") }
        }
    }

    private var repositoryFolder: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
}
