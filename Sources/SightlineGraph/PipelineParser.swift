import Foundation
import Yams

/// Reads a pipeline YAML file into a `PipelineSpec`, keeping the line and column of every
/// value so validation errors point at the exact spot.
///
/// ```yaml
/// pipeline: demo            # name (default: the file name)
/// heartbeat: 5              # seconds between status heartbeats
/// output: results           # folder for what the pipeline writes (default: where it runs; --output overrides)
/// defaults: {policy: block, capacity: 16}
/// nodes:
///   cam1: {type: source, url: clip.mp4, fps: 2}
///   stats: {type: frame_stats}
///   out: {type: publish, endpoint: "pub+bind:tcp://127.0.0.1:5555"}
/// edges:
///   - cam1 -> stats
///   - stats -> out
///   - {from: cam1, to: out, policy: drop-oldest, capacity: 4}
/// ```
public enum PipelineParser {
    public static let topLevelKeys = ["pipeline", "heartbeat", "defaults", "output", "link", "nodes", "edges"]

    public static func parse(file: String) -> (PipelineSpec?, [Diagnostic]) {
        guard let data = FileManager.default.contents(atPath: file) else {
            return (nil, [Diagnostic(SourceLocation(file: file, line: 0, column: 0), "cannot read pipeline file",
                                     hint: FileManager.default.fileExists(atPath: file) ? "check its permissions" : "no such file; see Pipelines/ for examples")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return (nil, [Diagnostic(SourceLocation(file: file, line: 0, column: 0), "pipeline file is not UTF-8 text")])
        }
        return parse(text: text, file: file)
    }

    public static func parse(text: String, file: String) -> (PipelineSpec?, [Diagnostic]) {
        var diagnostics: [Diagnostic] = []
        func at(_ node: Yams.Node?) -> SourceLocation {
            guard let mark = node?.mark else { return SourceLocation(file: file, line: 1, column: 1) }
            return SourceLocation(file: file, line: mark.line, column: mark.column)
        }

        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            return (nil, [yamlDiagnostic(error, file: file, text: text)])
        } catch {
            return (nil, [Diagnostic(SourceLocation(file: file, line: 1, column: 1), "cannot parse YAML: \(error)")])
        }
        guard let root, let top = root.mapping else {
            return (nil, [Diagnostic(at(root), "a pipeline file is a mapping with 'nodes' and 'edges'",
                                     hint: "see Pipelines/ for examples")])
        }

        var spec = PipelineSpec(
            name: ((file as NSString).lastPathComponent as NSString).deletingPathExtension, file: file,
            nodes: [], edges: [], heartbeat: 5, defaultPolicy: .block, defaultCapacity: 16,
            nodesLocation: at(root))
        var sawNodes = false
        var sawEdges = false

        var seenTop: [String: SourceLocation] = [:]
        for (keyNode, value) in top {
            let key = keyNode.string ?? ""
            // YAML parsers keep the last of two equal keys; a pipeline never means that.
            if let first = seenTop[key] {
                diagnostics.append(Diagnostic(at(keyNode), "duplicate key '\(key)'", hint: "it is already set at line \(first.line); keep one"))
                continue
            }
            seenTop[key] = at(keyNode)
            switch key {
            case "pipeline":
                if let name = value.string, !name.isEmpty { spec.name = name } else {
                    diagnostics.append(Diagnostic(at(value), "'pipeline' is the pipeline's name: a string"))
                }
            case "heartbeat":
                if let seconds = value.string.flatMap(Double.init), seconds > 0, seconds <= 3600 {
                    spec.heartbeat = seconds
                } else {
                    diagnostics.append(Diagnostic(at(value), "'heartbeat' must be seconds between 0 and 3600",
                                                  hint: "e.g. heartbeat: 5"))
                }
            case "defaults":
                parseDefaults(value, into: &spec, diagnostics: &diagnostics, at: at)
            case "output":
                if let folder = value.string, !folder.isEmpty {
                    spec.output = OptionEntry(value: folder, location: at(value))
                } else {
                    diagnostics.append(Diagnostic(at(value), "'output' is the folder results go to: a path",
                                                  hint: "e.g. output: sightline-batch (relative to where sightline runs; --output DIR overrides it)"))
                }
            case "link":
                guard let mapping = value.mapping else {
                    diagnostics.append(Diagnostic(at(value), "'link' holds how the edge part reaches the core part: a mapping",
                                                  hint: "link: {url: nats://core.example:4222}"))
                    continue
                }
                spec.linkLocation = at(keyNode)
                for (k, v) in mapping {
                    guard let name = k.string, let scalar = v.scalar else {
                        diagnostics.append(Diagnostic(at(v), "each 'link' setting is a single value"))
                        continue
                    }
                    spec.link.append((name, OptionEntry(value: scalar.string, location: at(v))))
                }
            case "nodes":
                sawNodes = true
                spec.nodesLocation = at(keyNode)
                parseNodes(value, into: &spec, diagnostics: &diagnostics, at: at)
            case "edges":
                sawEdges = true
                parseEdges(value, into: &spec, diagnostics: &diagnostics, at: at)
            default:
                diagnostics.append(Diagnostic(at(keyNode), "unknown top-level key '\(key)'",
                                              hint: suggestion(for: key, among: topLevelKeys) ?? "allowed: \(topLevelKeys.joined(separator: ", "))"))
            }
        }
        if !sawNodes { diagnostics.append(Diagnostic(at(root), "no 'nodes' section", hint: "a pipeline needs at least a source and a sink")) }
        if !sawEdges { diagnostics.append(Diagnostic(at(root), "no 'edges' section", hint: "connect nodes with e.g. '- cam1 -> out'")) }
        return (spec, diagnostics)
    }

    private static func parseDefaults(_ value: Yams.Node, into spec: inout PipelineSpec, diagnostics: inout [Diagnostic], at: (Yams.Node?) -> SourceLocation) {
        guard let mapping = value.mapping else {
            diagnostics.append(Diagnostic(at(value), "'defaults' must be a mapping", hint: "defaults: {policy: block, capacity: 16}"))
            return
        }
        for (k, v) in mapping {
            switch k.string ?? "" {
            case "policy":
                if let policy = v.string.flatMap(EdgePolicy.init(rawValue:)) { spec.defaultPolicy = policy } else {
                    diagnostics.append(Diagnostic(at(v), "unknown edge policy '\(v.string ?? "")'", hint: "one of: \(EdgePolicy.allCases.map(\.rawValue).joined(separator: ", "))"))
                }
            case "capacity":
                if let c = v.string.flatMap(Int.init), c >= 1, c <= 100_000 { spec.defaultCapacity = c } else {
                    diagnostics.append(Diagnostic(at(v), "capacity must be an integer from 1 to 100000"))
                }
            default:
                diagnostics.append(Diagnostic(at(k), "unknown key '\(k.string ?? "")' in defaults", hint: "allowed: policy, capacity"))
            }
        }
    }

    private static func parseNodes(_ value: Yams.Node, into spec: inout PipelineSpec, diagnostics: inout [Diagnostic], at: (Yams.Node?) -> SourceLocation) {
        guard let mapping = value.mapping else {
            diagnostics.append(Diagnostic(at(value), "'nodes' must map node ids to their type and options",
                                          hint: "nodes:\n      cam1: {type: source, url: clip.mp4}"))
            return
        }
        var ids = Set(spec.nodes.map(\.id))
        for (idNode, body) in mapping {
            let id = idNode.string ?? ""
            if !isValidID(id) {
                diagnostics.append(Diagnostic(at(idNode), "invalid node id '\(id)'",
                                              hint: "ids use letters, digits, '_', '-' and '.', start with a letter or digit (they become topic parts)"))
                continue
            }
            guard ids.insert(id).inserted else {
                diagnostics.append(Diagnostic(at(idNode), "duplicate node id '\(id)'"))
                continue
            }
            guard let fields = body.mapping else {
                diagnostics.append(Diagnostic(at(body), "node '\(id)' must be a mapping with at least 'type'", hint: "\(id): {type: frame_stats}"))
                continue
            }
            var node = NodeSpec(id: id, type: "", options: [], concurrency: 1, location: at(idNode), typeLocation: at(idNode))
            var seenKeys: [String: SourceLocation] = [:]
            for (k, v) in fields {
                let key = k.string ?? ""
                if let first = seenKeys[key] {
                    diagnostics.append(Diagnostic(at(k), "duplicate option '\(key)' of node '\(id)'", hint: "it is already set at line \(first.line); keep one"))
                    continue
                }
                seenKeys[key] = at(k)
                guard let scalar = v.scalar else {
                    diagnostics.append(Diagnostic(at(v), "option '\(key)' of node '\(id)' must be a single value"))
                    continue
                }
                switch key {
                case "type":
                    node.type = scalar.string
                    node.typeLocation = at(v)
                case "at":
                    if let placement = NodePlacement(rawValue: scalar.string) { node.placement = placement } else {
                        diagnostics.append(Diagnostic(at(v), "'at' says where node '\(id)' runs: edge or core",
                                                      hint: "at: edge runs it on the box by the cameras (`sightline run --role edge`); the rest runs on the core"))
                    }
                case "concurrency":
                    if let n = Int(scalar.string), n >= 1, n <= 64 { node.concurrency = n } else {
                        diagnostics.append(Diagnostic(at(v), "concurrency must be an integer from 1 to 64"))
                    }
                default:
                    node.options.append((key, OptionEntry(value: scalar.string, location: at(v))))
                }
            }
            if node.type.isEmpty {
                diagnostics.append(Diagnostic(at(idNode), "node '\(id)' has no 'type'", hint: "run `sightline nodes` for the list"))
                continue
            }
            spec.nodes.append(node)
        }
    }

    private static func parseEdges(_ value: Yams.Node, into spec: inout PipelineSpec, diagnostics: inout [Diagnostic], at: (Yams.Node?) -> SourceLocation) {
        guard let sequence = value.sequence else {
            diagnostics.append(Diagnostic(at(value), "'edges' must be a list", hint: "edges:\n      - cam1 -> stats"))
            return
        }
        for item in sequence {
            if let text = item.string {
                // "a -> b" or "a -> b, c"
                let parts = text.components(separatedBy: "->")
                let from = parts.first?.trimmingCharacters(in: .whitespaces) ?? ""
                let targets = parts.count == 2 ? parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } : []
                guard parts.count == 2, !from.isEmpty, !targets.isEmpty, targets.allSatisfy({ !$0.isEmpty }) else {
                    diagnostics.append(Diagnostic(at(item), "cannot read edge '\(text)'", hint: "write 'from -> to' or 'from -> to1, to2'"))
                    continue
                }
                for to in targets { spec.edges.append(EdgeSpec(from: from, to: to, policy: nil, capacity: nil, location: at(item))) }
            } else if let mapping = item.mapping {
                var from: String?
                var targets: [String] = []
                var policy: EdgePolicy?
                var capacity: Int?
                var ok = true
                for (k, v) in mapping {
                    switch k.string ?? "" {
                    case "from": from = v.string
                    case "to":
                        if let s = v.string { targets = [s] } else if let seq = v.sequence { targets = seq.compactMap(\.string) }
                    case "policy":
                        policy = v.string.flatMap(EdgePolicy.init(rawValue:))
                        if policy == nil {
                            ok = false
                            diagnostics.append(Diagnostic(at(v), "unknown edge policy '\(v.string ?? "")'", hint: "one of: \(EdgePolicy.allCases.map(\.rawValue).joined(separator: ", "))"))
                        }
                    case "capacity":
                        capacity = v.string.flatMap(Int.init)
                        if capacity == nil || capacity! < 1 || capacity! > 100_000 {
                            ok = false
                            diagnostics.append(Diagnostic(at(v), "capacity must be an integer from 1 to 100000"))
                        }
                    default:
                        ok = false
                        diagnostics.append(Diagnostic(at(k), "unknown edge key '\(k.string ?? "")'", hint: "allowed: from, to, policy, capacity"))
                    }
                }
                guard ok else { continue }
                guard let from, !targets.isEmpty else {
                    diagnostics.append(Diagnostic(at(item), "an edge needs 'from' and 'to'"))
                    continue
                }
                for to in targets { spec.edges.append(EdgeSpec(from: from, to: to, policy: policy, capacity: capacity, location: at(item))) }
            } else {
                diagnostics.append(Diagnostic(at(item), "an edge is 'from -> to' or a mapping with from/to/policy/capacity"))
            }
        }
    }

    public static func isValidID(_ id: String) -> Bool {
        guard let first = id.unicodeScalars.first, first.isASCII, CharacterSet.alphanumerics.contains(first) else { return false }
        return id.count <= 64 && id.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0)) }
    }

    static func yamlDiagnostic(_ error: YamlError, file: String, text: String = "") -> Diagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let where_ = context.map { "\($0.text) " } ?? ""
            return Diagnostic(SourceLocation(file: file, line: mark.line, column: mark.column), "YAML syntax: \(where_)\(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            // The parser names the key and the mapping; the line is the key's second
            // occurrence at the mapping's indentation, found in the text.
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for key in duplicates.sorted() {
                var found: [(line: Int, column: Int)] = []
                var indent: Int?
                for index in max(context.mark.line - 1, 0)..<lines.count {
                    let line = lines[index]
                    let trimmed = line.drop { $0 == " " }
                    guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
                    let column = line.count - trimmed.count
                    if let indent, column < indent { break }  // the mapping ended
                    guard trimmed.hasPrefix(key + ":") || trimmed.hasPrefix("\"\(key)\":") else { continue }
                    if indent == nil { indent = column }
                    if column == indent { found.append((index + 1, column + 1)) }
                }
                if found.count >= 2 {
                    return Diagnostic(SourceLocation(file: file, line: found[1].line, column: found[1].column), "duplicate key '\(key)'",
                                      hint: "it is already set at line \(found[0].line); keep one")
                }
            }
            return Diagnostic(SourceLocation(file: file, line: context.mark.line, column: context.mark.column),
                              "duplicate key \(duplicates.sorted().map { "'\($0)'" }.joined(separator: ", "))", hint: "keep one of each")
        default:
            return Diagnostic(SourceLocation(file: file, line: 1, column: 1), "YAML: \(error)")
        }
    }
}

/// "did you mean 'x'?" for a misspelt name.
func suggestion(for word: String, among candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }.sorted { $0.1 < $1.1 }
    guard let best = scored.first, best.1 <= max(2, word.count / 3) else { return nil }
    return "did you mean '\(best.0)'?"
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
