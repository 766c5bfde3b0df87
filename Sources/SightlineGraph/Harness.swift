import Foundation
import SightlineCore
import Synchronization

/// A deterministic, single-threaded way to drive nodes and small graphs, like swift-nio's
/// EmbeddedChannel or GStreamer's GstHarness: push items as if a source produced them, run
/// until idle, read what the sinks got, and move a manual clock.
///
/// Nothing runs until `runUntilIdle()` (or a full `block` edge forces the consumer to run),
/// and runners are processed in a fixed order, so every run of a test is the same.
public final class GraphHarness {
    public let runtime: GraphRuntime
    public let clock: ManualClock
    private let executor: SynchronousExecutor

    public init(pipeline: ValidatedPipeline, registry: NodeRegistry, clock: ManualClock = ManualClock()) throws {
        self.clock = clock
        self.runtime = try GraphRuntime(pipeline: pipeline, registry: registry, clock: clock, synchronous: true)
        guard let executor = runtime.executor as? SynchronousExecutor else { fatalError("harness needs the synchronous executor") }
        self.executor = executor
    }

    /// Pushes an item out of source node `sourceID`, as its decoder loop would.
    @discardableResult
    public func emit(_ item: Item, fromSource sourceID: String) -> FlowResult {
        guard let source = runtime.sources.first(where: { $0.nodeID == sourceID }) else {
            preconditionFailure("no source node '\(sourceID)' in the pipeline")
        }
        if case .frame(let frame) = item { runtime.metrics.frameIn(source: frame.sourceID) }
        var result = FlowResult.ok
        for port in source.outputs {
            let r = port.push(item, executor: executor)
            if r != .ok { result = r }
        }
        return result
    }

    /// Ends a source: end-of-stream goes out on all its edges.
    public func endStream(_ sourceID: String, _ end: EndOfStream? = nil) {
        emit(.endOfStream(end ?? EndOfStream(sourceID: sourceID)), fromSource: sourceID)
    }

    /// Runs a source node's real loop on this thread until it ends, then its end-of-stream.
    public func runSource(_ sourceID: String) {
        runtime.sources.first { $0.nodeID == sourceID }?.run()
    }

    /// Processes everything queued. Returns how many items were handled.
    @discardableResult
    public func runUntilIdle() -> Int { executor.runUntilIdle() }

    /// Moves the clock, fires a heartbeat if one is due, and runs until idle.
    public func advance(by seconds: Double) {
        clock.advance(by: seconds)
        runtime.heartbeatIfDue()
        runUntilIdle()
        // Nodes holding a batch whose wait is over release it now.
        for runner in runtime.runners { runner.flushIfDue() }
        runUntilIdle()
    }

    public func post(_ status: StatusEvent) {
        runtime.post(status)
    }

    /// Whether every node has closed (all sources ended and drained).
    public var isFinished: Bool { runtime.runners.allSatisfy(\.isClosed) }

    /// Items waiting on the edge `from -> to` (the first lane).
    public func queued(from: String, to: String) -> Int {
        runtime.runners.first { $0.nodeID == to }?.inputs.first { $0.from == from }?.count ?? 0
    }

    public func drops(from: String, to: String) -> Int {
        runtime.runners.filter { $0.nodeID == to }.flatMap(\.inputs).filter { $0.from == from }.reduce(0) { $0 + $1.drops }
    }
}

/// A sink that keeps what it receives, for tests: `CaptureSink.factory` registers the type
/// `capture`; `CaptureSink.items(for:)` reads what the node with that id received. The store
/// is process-wide, so tests that run in parallel must give their capture nodes distinct ids.
public final class CaptureSink: NodeProcessor {
    private static let store = Mutex<[String: [Item]]>([:])
    private let id: String

    public init(id: String) {
        self.id = id
        Self.store.withLock { $0[id] = [] }
    }

    public static let descriptor = NodeDescriptor(
        name: "capture", description: "Test sink: keeps every item it receives in memory.",
        role: .sink, inputs: .any, outputs: nil, options: [])

    public static let factory = NodeFactory(descriptor: descriptor) { id, _ in .processor(CaptureSink(id: id)) }

    public static func items(for id: String) -> [Item] { store.withLock { $0[id] ?? [] } }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        Self.store.withLock { $0[id, default: []].append(item) }
    }
}

/// A source for tests and benchmarks: emits `count` synthetic frames as fast as allowed.
public final class SyntheticSource: SourceProcessor, @unchecked Sendable {
    public let sourceID: String
    private let count: Int
    private let width: Int
    private let height: Int
    private let fps: Double
    private let realtime: Bool
    private let cancelled = Atomic<Bool>(false)

    public init(sourceID: String, count: Int, width: Int, height: Int, fps: Double, realtime: Bool = false) {
        self.realtime = realtime
        self.sourceID = sourceID
        self.count = count
        self.width = width
        self.height = height
        self.fps = fps
    }

    public static let descriptor = NodeDescriptor(
        name: "synthetic", description: "Emits numbered grey frames (tests and benchmarks), no decoding.",
        role: .source, inputs: nil, outputs: .frames,
        options: [
            OptionSpec("count", .int, default: .int(100), min: 0, max: 100_000_000, help: "frames to emit"),
            OptionSpec("size", .size, default: .string("64x48"), help: "frame size WxH"),
            OptionSpec("fps", .double, default: .double(25), min: 0.001, max: 10_000, help: "media frame rate (timestamps; emission pace with realtime)"),
            OptionSpec("realtime", .bool, default: .bool(false), help: "emit at fps, as a live camera would, instead of as fast as allowed"),
        ])

    public static let factory = NodeFactory(descriptor: descriptor) { id, options in
        let size = OptionSpec.parseSize(options.string("size") ?? "64x48")
        return .source(SyntheticSource(sourceID: id, count: options.int("count") ?? 100,
                                       width: size?.width ?? 64, height: size?.height ?? 48, fps: options.double("fps") ?? 25,
                                       realtime: options.bool("realtime") ?? false))
    }

    public func cancel() { cancelled.store(true, ordering: .relaxed) }

    public func run(context: any NodeContext, emit: (Item) -> FlowResult) throws -> EndOfStream {
        var emitted = 0
        let started = Date()
        for index in 0..<count {
            if cancelled.load(ordering: .relaxed) { break }
            if realtime {
                let wait = Double(index) / fps - Date().timeIntervalSince(started)
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            }
            let shade = UInt8(truncatingIfNeeded: index * 7)
            let frame = Frame(
                sourceID: sourceID, decodeIndex: index,
                timestamp: Timestamp(pts: Int64((Double(index) / fps * 1000).rounded()), timeBase: Rational(1, 1000)),
                seconds: Double(index) / fps, ingestWallClock: context.clock.now(), isKeyframe: index == 0,
                width: width, height: height, pixelFormat: .gray8,
                pixels: [UInt8](repeating: shade, count: width * height))
            if emit(.frame(frame)) == .flushing { break }
            emitted += 1
        }
        return EndOfStream(sourceID: sourceID, frames: emitted)
    }
}
