import SightlineCore

/// What an edge carries, in order, per source.
public enum Item: Sendable {
    case frame(Frame)
    case record(Record)
    /// Lifecycle and trouble; delivered to sinks on their own never-dropping input.
    case status(StatusEvent)
    /// The last item of a source on this edge. `fields` carry the source's final counters.
    case endOfStream(EndOfStream)

    public var sourceID: String? {
        switch self {
        case .frame(let f): f.sourceID
        case .record(let r): r.sourceID
        case .status(let s): s.sourceID
        case .endOfStream(let e): e.sourceID
        }
    }
}

/// GStreamer's flow result: what happened to a pushed item.
public enum FlowResult: Sendable, Equatable {
    case ok
    /// Dropped by the edge's policy (counted).
    case dropped
    /// The graph is shutting down; sources should stop.
    case flushing
}

/// What a node sees of the running graph.
public protocol NodeContext: Sendable {
    var clock: any GraphClock { get }
    var pipelineName: String { get }
    var pipelineHash: String { get }
    /// The hash of what decides results (`ValidatedPipeline.resultsHash`).
    var resultsHash: String { get }
    var metrics: GraphMetrics { get }
    /// Posts a status event to every sink.
    func post(_ status: StatusEvent)
}

extension NodeContext {
    /// Contexts outside a running graph (tests, tools): the pipeline hash stands in.
    public var resultsHash: String { pipelineHash }
}

/// A transform or sink. Called on one queue at a time (per lane), so it may keep state
/// without locks; items of one source always arrive in order.
public protocol NodeProcessor: AnyObject {
    /// Handle one item (frames, records, status for sinks, end-of-stream per source) and emit
    /// results downstream. End-of-stream is forwarded by the scheduler after this returns.
    func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws
    /// Every source has ended: flush files and sockets.
    func close(context: any NodeContext) throws
    /// For nodes that hold items back (dynamic batching): the clock time at which `flush`
    /// must run even if no new item arrives; nil when nothing is held.
    var flushDeadline: Double? { get }
    /// The deadline passed: emit what is held.
    func flush(context: any NodeContext, emit: (Item) -> Void) throws
}

extension NodeProcessor {
    public func close(context: any NodeContext) throws {}
    public var flushDeadline: Double? { nil }
    public func flush(context: any NodeContext, emit: (Item) -> Void) throws {}
}

/// A node that produces items on its own thread (a decoder loop). `emit` blocks under
/// back-pressure and reports `.flushing` when the graph is stopping.
public protocol SourceProcessor: AnyObject, Sendable {
    var sourceID: String { get }
    /// Runs until the source ends or is cancelled. Throwing ends this source only; the
    /// scheduler publishes the error and its end-of-stream.
    func run(context: any NodeContext, emit: (Item) -> FlowResult) throws -> EndOfStream
    /// Thread-safe: stop soon and return from `run`.
    func cancel()
}

/// A node type: its descriptor (the libavfilter table) and how to make an instance.
public struct NodeFactory: Sendable {
    public enum Instance {
        case processor(NodeProcessor)
        case source(SourceProcessor)
    }

    public var descriptor: NodeDescriptor
    public var make: @Sendable (_ id: String, _ options: NodeOptions) throws -> Instance

    public init(descriptor: NodeDescriptor, make: @escaping @Sendable (String, NodeOptions) throws -> Instance) {
        self.descriptor = descriptor
        self.make = make
    }
}

public enum PortKind: String, Sendable {
    case frames, records, any
}

public struct NodeDescriptor: Sendable {
    public enum Role: String, Sendable {
        case source, transform, sink
    }

    public var name: String
    public var description: String
    public var role: Role
    public var inputs: PortKind?
    public var outputs: PortKind?
    public var options: [OptionSpec]
    /// Whether instances keep no state across items, so several lanes may run at once
    /// (items are routed to lanes by source, so each source stays in order).
    public var allowsConcurrency: Bool
    /// Groups of options of which exactly one must be given (e.g. a file `path` or a `dir`).
    public var exactlyOneOf: [[String]]
    /// The result kinds it needs from upstream and those it adds.
    public var contract: NodeContract

    public init(
        name: String, description: String, role: Role, inputs: PortKind?, outputs: PortKind?,
        options: [OptionSpec], allowsConcurrency: Bool = false, exactlyOneOf: [[String]] = [], contract: NodeContract = .none
    ) {
        self.exactlyOneOf = exactlyOneOf
        self.contract = contract
        self.name = name
        self.description = description
        self.role = role
        self.inputs = inputs
        self.outputs = outputs
        self.options = options
        self.allowsConcurrency = allowsConcurrency
    }

    public func option(_ name: String) -> OptionSpec? { options.first { $0.name == name } }
}

/// Looks up node types by name; `sightline nodes` prints it.
public struct NodeRegistry: Sendable {
    public private(set) var factories: [String: NodeFactory] = [:]

    public init(_ factories: [NodeFactory] = []) {
        for factory in factories { register(factory) }
    }

    public mutating func register(_ factory: NodeFactory) {
        factories[factory.descriptor.name] = factory
    }

    public func factory(_ name: String) -> NodeFactory? { factories[name] }

    public var names: [String] { factories.keys.sorted() }
}
