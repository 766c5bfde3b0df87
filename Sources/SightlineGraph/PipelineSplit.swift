import Foundation
import SightlineCore

/// Splits one pipeline file between a small box by the cameras (the edge) and a core. Nodes
/// marked `at: edge` run on the edge; the rest run on the core. Every edge node whose output
/// goes to the core gets a `link_send` sink on the edge, and the core gets a `link_receive`
/// source in its place (`edge.NODE`), on NATS subject `PREFIX.PIPELINE.NODE` in a JetStream
/// stream. So where each stage runs is a setting of the file, not another file. A pure
/// rewrite of the validated whole, which keeps every contract check of the whole pipeline.
public enum PipelineSplit {
    public static let sendType = "link_send"
    public static let receiveType = "link_receive"
    /// `link:` settings both sides use, and those only the sending side does.
    public static let sharedLinkSettings = ["url", "subject_prefix", "stream", "max_age", "token_file", "creds"]
    public static let sendLinkSettings = ["qscale", "buffer", "tile", "threshold", "min_pixels", "whole_above", "whole_every"]
    /// The node types that hide faces in frames; a private source's frames may cross after one.
    public static let redactingTypes: Set<String> = ["redact"]

    public struct Plan: Sendable {
        /// The pipeline this side runs.
        public var spec: PipelineSpec
        /// Edge nodes whose output crosses to the core, in file order.
        public var crossing: [String]
        /// Things the user should know (privacy consequences).
        public var notices: [String]
    }

    /// A subject token: NATS subject tokens exclude '.', '*', '>' and white space.
    static func token(_ text: String) -> String {
        SubjectToken.sanitized(text)
    }

    public static func subject(prefix: String, pipeline: String, node: String) -> String {
        "\(prefix).\(token(pipeline)).\(token(node))"
    }

    /// The side `role` of `whole`; `linkURL` (`--link`) replaces `link.url`.
    public static func split(_ whole: ValidatedPipeline, role: NodePlacement, linkURL: String? = nil) -> Result<Plan, Diagnostics> {
        let spec = whole.spec
        var diagnostics: [Diagnostic] = []
        let atEdge = Set(spec.nodes.filter { $0.placement == .edge }.map(\.id))
        guard !atEdge.isEmpty else {
            return .failure(Diagnostics(items: [Diagnostic(spec.nodesLocation, "--role \(role.rawValue): no node of \(spec.file) is placed at the edge",
                                                           hint: "mark the nodes that run by the cameras with `at: edge` (the source, the region selector, cheap detectors)")]))
        }
        for edge in spec.edges where !atEdge.contains(edge.from) && atEdge.contains(edge.to) {
            diagnostics.append(Diagnostic(edge.location, "edge '\(edge.from) -> \(edge.to)' goes from the core back to the edge",
                                          hint: "a split pipeline flows one way: give '\(edge.from)' `at: edge` too, or run '\(edge.to)' on the core"))
        }
        let crossing = spec.nodes.map(\.id).filter { id in atEdge.contains(id) && spec.edges.contains { $0.from == id && !atEdge.contains($0.to) } }
        if crossing.isEmpty {
            diagnostics.append(Diagnostic(spec.nodesLocation, "nothing goes from the edge to the core",
                                          hint: "connect an `at: edge` node to a node without it"))
        }

        // The link settings, checked here so a mistake points at the `link:` block.
        var shared: [(name: String, entry: OptionEntry)] = [], sendOnly: [(name: String, entry: OptionEntry)] = []
        for (name, entry) in spec.link {
            if sharedLinkSettings.contains(name) { shared.append((name, entry)) } else if sendLinkSettings.contains(name) { sendOnly.append((name, entry)) } else {
                diagnostics.append(Diagnostic(entry.location, "unknown link setting '\(name)'",
                                              hint: "allowed: \((sharedLinkSettings + sendLinkSettings).joined(separator: ", "))"))
            }
        }
        if let linkURL {
            shared.removeAll { $0.name == "url" }
            shared.append(("url", OptionEntry(value: linkURL, location: .commandLine("--link \(linkURL)"))))
        }
        if !shared.contains(where: { $0.name == "url" }) {
            diagnostics.append(Diagnostic(spec.linkLocation ?? spec.nodesLocation, "a split pipeline needs the NATS server the edge and the core share",
                                          hint: "add `link: {url: nats://HOST:4222}` to \(spec.file), or pass --link nats://HOST:4222"))
        }
        let prefix = shared.last { $0.name == "subject_prefix" }?.entry.value ?? "sightline_link"

        // Sources whose pixels never leave the edge.
        var privateSources: [String] = []
        for node in whole.nodes where node.descriptor.role == .source && node.options.string("privacy") == "edge-only" {
            if atEdge.contains(node.id) {
                privateSources.append(node.id)
            } else {
                diagnostics.append(Diagnostic(spec.node(node.id)?.option("privacy")?.location ?? spec.nodesLocation,
                                              "source '\(node.id)' is `privacy: edge-only` but runs on the core",
                                              hint: "give it `at: edge`, so its pixels stay on the box by the camera"))
            }
        }
        guard diagnostics.isEmpty else { return .failure(Diagnostics(items: diagnostics)) }

        var parents: [String: [String]] = [:]
        for edge in spec.edges { parents[edge.to, default: []].append(edge.from) }
        func ancestors(of id: String) -> Set<String> {
            var seen = Set<String>(), stack = parents[id] ?? []
            while let next = stack.popLast() {
                if seen.insert(next).inserted { stack += parents[next] ?? [] }
            }
            return seen
        }
        var notices: [String] = []
        for id in crossing where !privateSources.isEmpty {
            let upstream = ancestors(of: id).union([id])
            let redacted = upstream.contains { spec.node($0).map { redactingTypes.contains($0.type) } ?? false }
            for source in privateSources where upstream.contains(source) {
                notices.append(redacted
                    ? "source '\(source)' is edge-only: its frames cross at '\(id)' only as redacted by a redact node; frames that did not pass one stay on the edge"
                    : "source '\(source)' is edge-only: no redact node comes before '\(id)', so only its results cross there; its frames stay on the edge")
            }
        }

        var side = spec
        switch role {
        case .edge:
            side.nodes = spec.nodes.filter { atEdge.contains($0.id) }
            side.edges = spec.edges.filter { atEdge.contains($0.from) && atEdge.contains($0.to) }
            for id in crossing {
                guard let node = spec.node(id) else { continue }
                var options = shared + sendOnly
                options.append(("subject", OptionEntry(value: subject(prefix: prefix, pipeline: spec.name, node: id), location: node.location)))
                if !privateSources.isEmpty {
                    options.append(("private_sources", OptionEntry(value: privateSources.joined(separator: ","), location: node.location)))
                }
                side.nodes.append(NodeSpec(id: "\(id).link", type: sendType, options: options, concurrency: 1, location: node.location,
                                           typeLocation: node.location, placement: .edge))
                side.edges.append(EdgeSpec(from: id, to: "\(id).link", policy: nil, capacity: nil, location: node.location))
            }
        case .core:
            let available = PipelineValidator.availableKinds(nodes: whole.nodes, edges: whole.edges)
            side.nodes = spec.nodes.filter { !atEdge.contains($0.id) }
            side.edges = []
            for id in crossing {
                guard let node = spec.node(id), let resolved = whole.node(id) else { continue }
                let carries = (available[id] ?? []).union(resolved.descriptor.contract.produces(given: resolved.options))
                var options = shared
                options.append(("subject", OptionEntry(value: subject(prefix: prefix, pipeline: spec.name, node: id), location: node.location)))
                options.append(("durable", OptionEntry(value: "core_" + token(spec.name) + "_" + token(id), location: node.location)))
                options.append(("carries", OptionEntry(value: carries.map(\.rawValue).sorted().joined(separator: ","), location: node.location)))
                side.nodes.insert(NodeSpec(id: "edge.\(id)", type: receiveType, options: options, concurrency: 1, location: node.location,
                                           typeLocation: node.location, placement: .core), at: 0)
            }
            for edge in spec.edges where !atEdge.contains(edge.to) {
                var edge = edge
                if atEdge.contains(edge.from) { edge.from = "edge.\(edge.from)" }
                side.edges.append(edge)
            }
        }
        return .success(Plan(spec: side, crossing: crossing, notices: notices))
    }
}
