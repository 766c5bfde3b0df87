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
