import Crypto
import Foundation
import SightlineCore

/// A pipeline that passed validation: node types known, options typed and in range, edges
/// connecting real nodes in a DAG with at least one source and one sink.
public struct ValidatedPipeline: Sendable {
    public struct ResolvedNode: Sendable {
        public var id: String
        public var type: String
        public var descriptor: NodeDescriptor
        public var options: NodeOptions
        public var concurrency: Int
    }

    public struct ResolvedEdge: Sendable, Equatable {
        public var from: String
        public var to: String
        public var policy: EdgePolicy
        public var capacity: Int
    }

    public var spec: PipelineSpec
    public var nodes: [ResolvedNode]
    public var edges: [ResolvedEdge]
    /// sha256 of the canonical pipeline text (after command-line overrides).
    public var hash: String
    /// sha256 of what decides the results: every node but the sinks with its resolved options
    /// (a source's input URL, resume switch and privacy left out: the journal keys files by path, and privacy decides only what leaves the edge), and
    /// the edges between them. Where results are published or written does not change it, so
    /// a batch journal can tell "same job" from "other settings".
    public var resultsHash: String {
        let sinks = Set(nodes.filter { $0.descriptor.role == .sink }.map(\.id))
        var lines: [String] = []
        for node in nodes.sorted(by: { $0.id < $1.id }) where !sinks.contains(node.id) {
            lines.append("node \(node.id) \(node.type)")
            let ignored: Set<String> = node.descriptor.role == .source ? ["url", "resume", "privacy"] : []
            for (name, value) in node.options.values.sorted(by: { $0.key < $1.key }) where !ignored.contains(name) {
                lines.append("  \(name)=\(value)")
            }
        }
        for edge in edges.sorted(by: { ($0.from, $0.to) < ($1.from, $1.to) }) where !sinks.contains(edge.to) {
            lines.append("edge \(edge.from) -> \(edge.to)")
        }
        return SHA256.hash(data: Data(lines.joined(separator: "\n").utf8)).map { String(format: "%02x", $0) }.joined()
    }
    /// Where its relative paths pointed (every path option is already absolute).
    public var paths: PipelinePaths

    public var name: String { spec.name }
    public func node(_ id: String) -> ResolvedNode? { nodes.first { $0.id == id } }
}

/// Every problem found in a pipeline, each on its own lines (`file:line:column: error: …`,
/// then its hint), and how many.
public struct Diagnostics: UserFacingError, Sendable {
    public var items: [Diagnostic]
    public init(items: [Diagnostic]) { self.items = items }
    public var message: String {
        items.map(\.description).joined(separator: "\n") + "\n\(items.count) error\(items.count == 1 ? "" : "s")"
    }
    public var description: String { items.map(\.description).joined(separator: "\n") }
}

public enum PipelineValidator {
    /// Every problem at once, each with its position and a hint; or the validated pipeline.
    /// Relative paths resolve as `PipelinePaths` says, from `workingDirectory`.
    public static func validate(_ spec: PipelineSpec, registry: NodeRegistry,
                                workingDirectory: String = FileManager.default.currentDirectoryPath) -> Result<ValidatedPipeline, Diagnostics> {
        var diagnostics: [Diagnostic] = []
        var resolved: [ValidatedPipeline.ResolvedNode] = []
        let paths = spec.paths(workingDirectory: workingDirectory)

        for node in spec.nodes {
            guard let factory = registry.factory(node.type) else {
                diagnostics.append(Diagnostic(node.typeLocation, "unknown node type '\(node.type)' for node '\(node.id)'",
                                              hint: suggestion(for: node.type, among: registry.names).map { "\($0) (`sightline nodes` lists all)" }
                                                  ?? "`sightline nodes` lists all: \(registry.names.joined(separator: ", "))"))
                continue
            }
            let descriptor = factory.descriptor
            var values: [String: OptionValue] = [:]
            var seen = Set<String>()
            for (name, entry) in node.options.reversed() where seen.insert(name).inserted {
                guard let option = descriptor.option(name) else {
                    let names = descriptor.options.map(\.name)
                    diagnostics.append(Diagnostic(entry.location, "unknown option '\(name)' for node '\(node.id)' (\(node.type))",
                                                  hint: suggestion(for: name, among: names)
                                                      ?? (names.isEmpty ? "\(node.type) takes no options" : "\(node.type) options: \(names.joined(separator: ", "))")))
                    continue
                }
                switch option.parse(entry.value) {
                case .success(.string(let text)) where [.inputFile, .inputFolder, .outputPath, .media].contains(option.type):
                    let path = paths.resolve(text, type: option.type, from: entry.location)
                    values[name] = .string(path)
                    if [.inputFile, .inputFolder].contains(option.type), !path.isEmpty, let problem = fileProblem(path, option: option) {
                        let base = entry.location.isCommandLine ? "the working directory (\(paths.workingDirectory))" : "the pipeline's folder (\(paths.pipelineFolder))"
                        diagnostics.append(Diagnostic(entry.location, "option '\(name)' of node '\(node.id)': cannot use '\(text)' (\(path)): \(problem)",
                                                      hint: "a relative path here is relative to \(base); \(option.help)"))
                    }
                case .success(let value): values[name] = value
                case .failure(let error):
                    diagnostics.append(Diagnostic(entry.location, "option '\(name)' of node '\(node.id)': \(error)",
                                                  hint: "\(name) (\(option.type)\(option.rangeDescription.map { ", \($0)" } ?? "")): \(option.help)"))
                }
            }
            for option in descriptor.options where values[option.name] == nil {
                if let value = option.defaultValue {
                    values[option.name] = value
                } else if option.required {
                    diagnostics.append(Diagnostic(node.location, "node '\(node.id)' (\(node.type)) needs option '\(option.name)'",
                                                  hint: "\(option.name): \(option.help)"))
                }
            }
            for group in descriptor.exactlyOneOf {
                let given = group.filter { name in node.option(name).map { !$0.value.isEmpty } ?? false }
                if given.count != 1 {
                    let names = group.map { "'\($0)'" }.joined(separator: " or ")
                    diagnostics.append(Diagnostic(given.count > 1 ? (node.option(given[1])?.location ?? node.location) : node.location,
                                                  given.isEmpty ? "node '\(node.id)' (\(node.type)) needs option \(names)" : "node '\(node.id)' (\(node.type)) takes only one of \(names)",
                                                  hint: group.compactMap { descriptor.option($0).map { "\($0.name): \($0.help)" } }.joined(separator: "; ")))
                }
            }
            if node.concurrency > 1 && !descriptor.allowsConcurrency {
                diagnostics.append(Diagnostic(node.location, "node '\(node.id)' (\(node.type)) keeps state and cannot run with concurrency \(node.concurrency)",
                                              hint: "remove 'concurrency' or use 1"))
            }
            resolved.append(.init(id: node.id, type: node.type, descriptor: descriptor, options: NodeOptions(values, outputDirectory: paths.outputDirectory),
                                  concurrency: node.concurrency))
        }

        let known = Dictionary(resolved.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let declared = Set(spec.nodes.map(\.id))
        var edges: [ValidatedPipeline.ResolvedEdge] = []
        var seenEdges = Set<String>()
        // Edges between declared nodes, even ones whose type is unknown: connectivity checks
        // use these so one misspelt type does not also report its neighbours as unconnected.
        let connections = spec.edges.filter { declared.contains($0.from) && declared.contains($0.to) }
        for edge in spec.edges {
            var ok = true
            for end in [edge.from, edge.to] where !declared.contains(end) {
                ok = false
                diagnostics.append(Diagnostic(edge.location, "dangling edge \(edge.from) -> \(edge.to): no node '\(end)'",
                                              hint: suggestion(for: end, among: Array(declared)) ?? "declared nodes: \(spec.nodes.map(\.id).joined(separator: ", "))"))
            }
            guard ok, let from = known[edge.from], let to = known[edge.to] else { continue }
            if from.descriptor.role == .sink {
                diagnostics.append(Diagnostic(edge.location, "edge \(edge.from) -> \(edge.to) leaves sink '\(edge.from)', which has no output"))
                continue
            }
            if to.descriptor.role == .source {
                diagnostics.append(Diagnostic(edge.location, "edge \(edge.from) -> \(edge.to) enters source '\(edge.to)', which has no input"))
                continue
            }
            if edge.from == edge.to {
                diagnostics.append(Diagnostic(edge.location, "edge \(edge.from) -> \(edge.to) is a cycle", hint: "a pipeline is a DAG"))
                continue
            }
            guard seenEdges.insert("\(edge.from)->\(edge.to)").inserted else {
                diagnostics.append(Diagnostic(edge.location, "duplicate edge \(edge.from) -> \(edge.to)"))
                continue
            }
            edges.append(.init(from: edge.from, to: edge.to, policy: edge.policy ?? spec.defaultPolicy, capacity: edge.capacity ?? spec.defaultCapacity))
        }

        if let cycle = findCycle(nodes: resolved.map(\.id), edges: edges) {
            let closing = spec.edges.first { $0.from == cycle[cycle.count - 2] && $0.to == cycle[cycle.count - 1] }
            diagnostics.append(Diagnostic(closing?.location ?? spec.nodesLocation, "cycle: \(cycle.joined(separator: " -> "))",
                                          hint: "a pipeline is a DAG; remove one of these edges"))
        }

        if !resolved.isEmpty || !spec.nodes.isEmpty {
            if !resolved.contains(where: { $0.descriptor.role == .sink }) && diagnostics.isEmpty {
                diagnostics.append(Diagnostic(spec.nodesLocation, "no sink: results would go nowhere",
                                              hint: "add e.g. out: {type: publish, endpoint: \"pub+bind:tcp://127.0.0.1:5555\"} or {type: jsonl, path: out.jsonl}"))
            }
            if !resolved.contains(where: { $0.descriptor.role == .source }) && diagnostics.isEmpty {
                diagnostics.append(Diagnostic(spec.nodesLocation, "no source", hint: "add e.g. cam1: {type: source, url: clip.mp4}"))
            }
        }
        // Sets, not a scan of the edges per node: validation stays linear in the pipeline's size.
        let withInput = Set(connections.map(\.to)), withOutput = Set(connections.map(\.from))
        for node in resolved {
            let hasInput = withInput.contains(node.id)
            let hasOutput = withOutput.contains(node.id)
            if node.descriptor.role != .source && !hasInput {
                diagnostics.append(Diagnostic(spec.node(node.id)?.location ?? spec.nodesLocation, "node '\(node.id)' has no input edge",
                                              hint: "connect it, e.g. '- SOURCE -> \(node.id)'"))
            }
            if node.descriptor.role != .sink && !hasOutput {
                diagnostics.append(Diagnostic(spec.node(node.id)?.location ?? spec.nodesLocation, "output of node '\(node.id)' goes nowhere",
                                              hint: "connect it to a sink, e.g. '- \(node.id) -> out'"))
            }
        }

        if diagnostics.isEmpty {
            diagnostics += contractDiagnostics(spec: spec, nodes: resolved, edges: edges, registry: registry)
        }

        guard diagnostics.isEmpty else {
            return .failure(Diagnostics(items: diagnostics.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }))
        }
        let digest = SHA256.hash(data: Data(spec.canonicalText.utf8))
        let hash = digest.map { String(format: "%02x", $0) }.joined()
        return .success(ValidatedPipeline(spec: spec, nodes: resolved, edges: edges, hash: hash, paths: paths))
    }

    /// The result kinds that reach each node's input: its parents' and what they produce, in
    /// one pass in topological order (the graph must be a DAG).
    public static func availableKinds(nodes: [ValidatedPipeline.ResolvedNode], edges: [ValidatedPipeline.ResolvedEdge]) -> [String: Set<ResultKind>] {
        var parents: [String: [String]] = [:], children: [String: [String]] = [:]
        for edge in edges {
            parents[edge.to, default: []].append(edge.from)
            children[edge.from, default: []].append(edge.to)
        }
        let byID = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var waiting = Dictionary(nodes.map { ($0.id, parents[$0.id]?.count ?? 0) }, uniquingKeysWith: { a, _ in a })
        var ready = nodes.map(\.id).filter { waiting[$0] == 0 }
        var availableAt: [String: Set<ResultKind>] = [:]
        while let id = ready.popLast() {
            var kinds = Set<ResultKind>()
            for parent in parents[id] ?? [] {
                kinds.formUnion(availableAt[parent] ?? [])
                if let node = byID[parent] { kinds.formUnion(node.descriptor.contract.produces(given: node.options)) }
            }
            availableAt[id] = kinds
            for child in children[id] ?? [] {
                waiting[child, default: 1] -= 1
                if waiting[child] == 0 { ready.append(child) }
            }
        }
        return availableAt
    }

    /// What keeps a file option's file from being used: missing, a folder, unreadable, or
    /// rejected by the option's own check.
    static func fileProblem(_ path: String, option: OptionSpec) -> String? {
        if let problem = option.type == .inputFolder ? PipelinePaths.notAFolder(path) : PipelinePaths.unreadable(path) { return problem }
        do {
            try option.checkFile?(path)
        } catch {
            return "\(error)"
        }
        return nil
    }

    /// Needs no node upstream meets: `moderation` with nothing before it that scores, `delta`
    /// without a `regions` node, `captions` without labels, … (each node type's `NodeContract`).
    static func contractDiagnostics(spec: PipelineSpec, nodes: [ValidatedPipeline.ResolvedNode], edges: [ValidatedPipeline.ResolvedEdge],
                                    registry: NodeRegistry) -> [Diagnostic] {
        let availableAt = availableKinds(nodes: nodes, edges: edges)
        var diagnostics: [Diagnostic] = []
        for node in nodes {
            let needs = node.descriptor.contract.needs(given: node.options)
            guard !needs.isEmpty else { continue }
            let available = availableAt[node.id] ?? []
            for need in needs where available.isDisjoint(with: need.anyOf) {
                let spelled = need.anyOf.map { "`\($0.rawValue)`" }
                let kinds = spelled.count > 1 ? spelled.dropLast().joined(separator: ", ") + " or " + (spelled.last ?? "") : spelled.joined()
                let because = need.when.map { " (it has \($0))" } ?? ""
                let producers = registry.names.filter { name in
                    registry.factory(name).map { !Set($0.descriptor.contract.produces.map(\.kind)).isDisjoint(with: need.anyOf) } ?? false
                }
                let location = need.when.flatMap { spec.node(node.id)?.option($0.option)?.location } ?? spec.node(node.id)?.location ?? spec.nodesLocation
                diagnostics.append(Diagnostic(location, "node '\(node.id)' (\(node.type)) needs \(kinds) results\(because), and no node before it produces them",
                                              hint: need.hint + (producers.isEmpty ? "" : " (produced by: \(producers.joined(separator: ", ")))")))
            }
        }
        return diagnostics
    }

    /// A cycle as a node path ending where it started, or nil. Iterative: a chain of tens of
    /// thousands of nodes must not exhaust the stack.
    static func findCycle(nodes: [String], edges: [ValidatedPipeline.ResolvedEdge]) -> [String]? {
        var next: [String: [String]] = [:]
        for edge in edges { next[edge.from, default: []].append(edge.to) }
        var state: [String: Int] = [:]  // 1 on the current path, 2 done
        for root in nodes where state[root] == nil {
            // The current path, each node with the index of its next child to look at.
            var path: [(node: String, child: Int)] = [(root, 0)]
            state[root] = 1
            while let (node, child) = path.last {
                let targets = next[node] ?? []
                guard child < targets.count else {
                    state[node] = 2
                    path.removeLast()
                    continue
                }
                path[path.count - 1].child += 1
                let target = targets[child]
                if state[target] == 1, let start = path.firstIndex(where: { $0.node == target }) {
                    return path[start...].map(\.node) + [target]
                }
                if state[target] == nil {
                    state[target] = 1
                    path.append((target, 0))
                }
            }
        }
        return nil
    }
}
