import Foundation

/// A place in a pipeline file (or on the command line, line 0) that a diagnostic points at.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public static func commandLine(_ what: String) -> SourceLocation {
        SourceLocation(file: "command line (\(what))", line: 0, column: 0)
    }

    public var description: String { line == 0 ? file : "\(file):\(line):\(column)" }
}

/// One problem found in a pipeline, printed as `file:line:column: error: message` plus a hint.
public struct Diagnostic: Error, Sendable, Equatable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String
    public var hint: String?

    public init(_ location: SourceLocation, _ message: String, hint: String? = nil) {
        self.location = location
        self.message = message
        self.hint = hint
    }

    public var description: String {
        var text = "\(location): error: \(message)"
        if let hint { text += "\n    hint: \(hint)" }
        return text
    }
}

public enum EdgePolicy: String, Sendable, CaseIterable {
    /// The producer waits for space: nothing is lost (files).
    case block
    /// The oldest queued frame is dropped to make room (live: keep the newest picture).
    case dropOldest = "drop-oldest"
    /// The arriving frame is dropped (live: keep what is already queued).
    case dropNewest = "drop-newest"
}

public struct OptionEntry: Sendable, Equatable {
    public var value: String
    public var location: SourceLocation
}

/// Where a node runs when a pipeline is split between an edge box and a core (`at:`).
public enum NodePlacement: String, Sendable, CaseIterable {
    case edge, core
}

public struct NodeSpec: Sendable {
    public var id: String
    public var type: String
    public var options: [(name: String, entry: OptionEntry)]
    public var concurrency: Int
    public var location: SourceLocation
    public var typeLocation: SourceLocation
    /// `at:`; nil runs on the core when the pipeline is split (and everywhere when it is not).
    public var placement: NodePlacement?

    public init(id: String, type: String, options: [(name: String, entry: OptionEntry)], concurrency: Int, location: SourceLocation,
                typeLocation: SourceLocation, placement: NodePlacement? = nil) {
        self.id = id
        self.type = type
        self.options = options
        self.concurrency = concurrency
        self.location = location
        self.typeLocation = typeLocation
        self.placement = placement
    }

    public func option(_ name: String) -> OptionEntry? { options.last { $0.name == name }?.entry }

    public mutating func setOption(_ name: String, _ entry: OptionEntry) {
        options.removeAll { $0.name == name }
        options.append((name, entry))
    }
}

public struct EdgeSpec: Sendable, Equatable {
    public var from: String
    public var to: String
    public var policy: EdgePolicy?
    public var capacity: Int?
    public var location: SourceLocation
}

/// A parsed pipeline file, before validation against the node registry.
public struct PipelineSpec: Sendable {
    public var name: String
    public var file: String
    public var nodes: [NodeSpec]
    public var edges: [EdgeSpec]
    public var heartbeat: Double
    public var defaultPolicy: EdgePolicy
    public var defaultCapacity: Int
    public var nodesLocation: SourceLocation
    /// The output folder: the file's `output:` or `--output` (relative to the working directory).
    public var output: OptionEntry?
    /// `link:`: how the edge part of a split pipeline reaches its core part (see PipelineSplit).
    public var link: [(name: String, entry: OptionEntry)] = []
    public var linkLocation: SourceLocation?

    /// Where this pipeline's relative paths point, run from `workingDirectory`.
    public func paths(workingDirectory: String = FileManager.default.currentDirectoryPath) -> PipelinePaths {
        PipelinePaths(pipelineFile: file, output: output?.value, workingDirectory: workingDirectory)
    }

    /// `--output DIR`.
    public mutating func applyOutput(_ folder: String) {
        output = OptionEntry(value: folder, location: .commandLine("--output \(folder)"))
    }

    public func node(_ id: String) -> NodeSpec? { nodes.first { $0.id == id } }

    /// A stable description of everything that decides the pipeline's behaviour (after
    /// command-line overrides); its hash identifies the pipeline in every message.
    public var canonicalText: String {
        var lines = ["pipeline \(name)", "heartbeat \(heartbeat)", "defaults \(defaultPolicy.rawValue) \(defaultCapacity)"]
        for node in nodes {
            lines.append("node \(node.id) \(node.type) concurrency=\(node.concurrency)" + (node.placement.map { " at=\($0.rawValue)" } ?? ""))
            var seen = Set<String>()
            for (name, entry) in node.options.reversed() where seen.insert(name).inserted {
                lines.append("  \(name)=\(entry.value)")
            }
        }
        for edge in edges {
            lines.append("edge \(edge.from) -> \(edge.to) \(edge.policy?.rawValue ?? "-") \(edge.capacity.map(String.init) ?? "-")")
        }
        return lines.joined(separator: "\n")
    }

    /// `--set node.option=value`.
    public mutating func applyOverride(_ text: String) -> Diagnostic? {
        let location = SourceLocation.commandLine("--set \(text)")
        guard let eq = text.firstIndex(of: "="), let dot = text[..<eq].firstIndex(of: ".") else {
            return Diagnostic(location, "cannot read '\(text)'", hint: "write --set NODE.OPTION=VALUE, e.g. --set cam1.fps=2")
        }
        let nodeID = String(text[..<dot])
        let option = String(text[text.index(after: dot)..<eq])
        let value = String(text[text.index(after: eq)...])
        guard let index = nodes.firstIndex(where: { $0.id == nodeID }) else {
            return Diagnostic(location, "no node '\(nodeID)' in \(file)", hint: "nodes: \(nodes.map(\.id).joined(separator: ", "))")
        }
        nodes[index].setOption(option, OptionEntry(value: value, location: location))
        return nil
    }

    /// `--input URL` (one source) or `--input ID=URL`.
    public mutating func applyInput(_ text: String, sourceTypes: Set<String> = ["source", "files"]) -> Diagnostic? {
        let location = SourceLocation.commandLine("--input \(text)")
        let sources = nodes.indices.filter { sourceTypes.contains(nodes[$0].type) }
        if let eq = text.firstIndex(of: "="), !text[..<eq].contains(":"), !text[..<eq].contains("/"),
           let index = nodes.firstIndex(where: { $0.id == String(text[..<eq]) }) {
            nodes[index].setOption("url", OptionEntry(value: String(text[text.index(after: eq)...]), location: location))
            return nil
        }
        guard sources.count == 1, let only = sources.first else {
            return Diagnostic(location, "\(file) has \(sources.count) sources; say which one gets this input",
                              hint: "write --input ID=URL with ID one of: \(sources.map { nodes[$0].id }.joined(separator: ", "))")
        }
        nodes[only].setOption("url", OptionEntry(value: text, location: location))
        return nil
    }
}
