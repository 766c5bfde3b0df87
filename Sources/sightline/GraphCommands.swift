import ArgumentParser
import Foundation
import SightlineBus
import SightlineCore
import SightlineGraph
import SightlineMedia
import SightlineNodes

struct NodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes", abstract: "List node types, or show one node's options (like gst-inspect).")

    @Argument(help: "A node type to describe.")
    var name: String?

    func run() throws {
        let registry = BuiltinNodes.registry
        guard let name else {
            for type in registry.names {
                guard let d = registry.factory(type)?.descriptor else { continue }
                print(pad(type, 14) + pad(d.role.rawValue, 10) + d.description)
            }
            return
        }
        guard let descriptor = registry.factory(name)?.descriptor else {
            throw CommandError("no node type '\(name)'", hint: "`sightline nodes` lists them: \(registry.names.joined(separator: ", "))")
        }
        print("\(descriptor.name) — \(descriptor.description)")
        print("  role:    \(descriptor.role.rawValue)")
        print("  inputs:  \(descriptor.inputs?.rawValue ?? "none")")
        print("  outputs: \(descriptor.outputs?.rawValue ?? "none")")
        if descriptor.role != .source {
            print("  needs:    \(descriptor.contract.needsDescription)")
        }
        if descriptor.role != .sink {
            print("  produces: \(descriptor.role == .source ? "frames" : descriptor.contract.producesDescription)")
        }
        if descriptor.allowsConcurrency { print("  stateless: may run with concurrency > 1") }
        print(descriptor.options.isEmpty ? "  options: none" : "  options:")
        for option in descriptor.options {
            var line = "    " + pad(option.name, 20) + pad(option.type.description, 24)
            if let value = option.defaultValue { line += "default \(value)" } else if option.required { line += "required" } else { line += "optional" }
            if let range = option.rangeDescription { line += ", range \(range)" }
            print(line)
            print("        \(option.help)")
        }
    }
}

/// Reading, overriding and validating a pipeline file, shared by `validate` and `run`.
struct PipelineArguments: ParsableArguments {
    @Argument(help: "Pipeline file (YAML). See Pipelines/.")
    var file: String

    @Option(name: .customLong("input"), help: "Source URL: URL for a single-source pipeline, or ID=URL (repeatable).")
    var inputs: [String] = []

    @Option(name: .customLong("set"), help: "Override an option: NODE.OPTION=VALUE (repeatable).")
    var overrides: [String] = []

    @Option(name: .customLong("output"), help: ArgumentHelp(
        "Folder for what the pipeline writes (JSONL files and folders, the batch journal), relative paths included.",
        discussion: "Default: the pipeline's `output:`, else the working directory. Files the pipeline reads stay relative to its own folder."))
    var output: String?

    @Option(help: ArgumentHelp(
        "Run one side of a split pipeline: edge (the nodes marked `at: edge`) or core (the rest).",
        discussion: "The edge sends records and changed-tile JPEGs of its frames to the core over NATS JetStream (the file's `link:` block). Without --role the whole pipeline runs here."))
    var role: NodePlacement?

    @Option(help: "NATS URL(s) of a split pipeline's link, replacing the file's `link.url`.")
    var link: String?

    func load() throws -> ValidatedPipeline {
        let whole = try loadPipeline(file: file, overrides: overrides, output: output) { spec in
            inputs.compactMap { spec.applyInput($0) }
        }
        guard let role else {
            if link != nil { throw ValidationError("--link applies to one side of a split pipeline: add --role edge or --role core") }
            return whole
        }
        let plan: PipelineSplit.Plan
        switch PipelineSplit.split(whole, role: role, linkURL: link) {
        case .success(let p): plan = p
        case .failure(let diagnostics): throw diagnostics
        }
        for notice in plan.notices { FileHandle.standardError.write(Data("note: \(notice)\n".utf8)) }
        switch PipelineValidator.validate(plan.spec, registry: BuiltinNodes.registry) {
        case .success(let side): return side
        case .failure(let diagnostics): throw diagnostics
        }
    }
}

extension NodePlacement: ExpressibleByArgument {}

/// Parses a pipeline file, lets `prepare` adjust the spec (inputs, a renamed source) and
/// return its diagnostics, applies the `--set` overrides and `--output`, and validates. Every
/// problem is reported at once, with its position.
func loadPipeline(file: String, overrides: [String], output: String?,
                  prepare: (inout PipelineSpec) throws -> [Diagnostic] = { _ in [] }) throws -> ValidatedPipeline {
    let (parsed, parseDiagnostics) = PipelineParser.parse(file: file)
    var diagnostics = parseDiagnostics
    guard var spec = parsed else { throw Diagnostics(items: diagnostics) }
    diagnostics += try prepare(&spec)
    for override in overrides { if let d = spec.applyOverride(override) { diagnostics.append(d) } }
    if let output { spec.applyOutput(output) }
    switch PipelineValidator.validate(spec, registry: BuiltinNodes.registry) {
    case .success(let pipeline):
        if !diagnostics.isEmpty { throw Diagnostics(items: diagnostics) }
        return pipeline
    case .failure(let more):
        throw Diagnostics(items: diagnostics + more.items)
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check a pipeline file and report every error with file:line:column and a hint.")

    @OptionGroup var pipeline: PipelineArguments

    func run() throws {
        let validated = try pipeline.load()
        print("\(pipeline.file): ok — pipeline '\(validated.name)', \(validated.nodes.count) nodes, \(validated.edges.count) edges, hash \(validated.hash.prefix(12))")
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline until its sources end (or Ctrl-C / SIGTERM, which drains and publishes end-of-stream).",
        discussion: "Exit status: 0 all sources finished, 1 the pipeline could not start, 3 some source failed (the others ran to the end).")

    @OptionGroup var pipeline: PipelineArguments

    @Option(help: "After SIGINT/SIGTERM, seconds to drain queued frames before discarding them.")
    var drainTimeout: Double = 10

    @Flag(help: "Do not echo status events (errors, gaps, reconnects) on stderr.")
    var quiet = false

    @Option(help: "Progress bar with ETA for batch (`files`) sources: auto (when stderr is a terminal), on, off.")
    var progress: ProgressSetting = .auto

    enum ProgressSetting: String, ExpressibleByArgument, CaseIterable {
        case auto, on, off
    }

    func run() throws {
        FFmpegLogLevel.quiet.apply()
        let validated = try pipeline.load()
        let runtime: GraphRuntime
        do {
            runtime = try GraphRuntime(pipeline: validated, registry: BuiltinNodes.registry)
        } catch {
            throw ErrorInContext("pipeline '\(validated.name)'", error)
        }
        if !quiet {
            runtime.statusObserver = echoTrouble
        }
        let started = monotonicSeconds()
        let isTerminal = isatty(STDERR_FILENO) == 1
        let showProgress = progress == .on || (progress == .auto && isTerminal)
        let reporter = showProgress ? ProgressReporter(runtime: runtime, overwrite: isTerminal) : nil
        // Batch sources' plans, for a summary that counts files, not source nodes.
        let batchPlans = BatchPlans()
        let echo = runtime.statusObserver
        runtime.statusObserver = { status in
            if case .batchStarted(let plan) = status.detail, let node = status.sourceID { batchPlans.record(node: node, plan: plan) }
            echo?(status)
        }
        let observer = runtime.statusObserver
        if let reporter {
            runtime.statusObserver = { status in
                reporter.observe(status)
                observer?(status)
            }
        }
        let drainTimeout = self.drainTimeout
        let trap = SignalTrap {
            FileHandle.standardError.write(Data("sightline: stopping: draining queues (up to \(drainTimeout) s)\n".utf8))
            _ = runtime.stop(drainTimeout: drainTimeout)
        }
        defer { withExtendedLifetime(trap) {} }
        runtime.start()
        reporter?.start()
        _ = runtime.wait()
        reporter?.finish()

        let elapsed = monotonicSeconds() - started
        let snapshot = runtime.metrics.snapshot()
        let frames = snapshot.framesIn.values.reduce(0, +)
        let failedSources = runtime.failedSources
        var from = "\(runtime.sourceIDs.count) source(s)"
        let plans = batchPlans.all
        if !plans.isEmpty {
            // A batch: its files, what became of them, and the other sources if any.
            let files = plans.values.reduce(0) { $0 + $1.entries.count }
            let skipped = plans.values.reduce(0) { $0 + $1.entries.filter(\.skip).count }
            let failedFiles = plans.values.reduce(0) { sum, plan in sum + plan.entries.filter { !$0.skip && failedSources[$0.source] != nil }.count }
            from = "\(files) file(s) (\(files - skipped - failedFiles) processed, \(failedFiles) failed, \(skipped) already done)"
            let others = runtime.sourceIDs.count - plans.count
            if others > 0 { from += " and \(others) other source(s)" }
        }
        var line = String(format: "pipeline '%@': %d frames from %@ in %.2f s (%.1f frames/s)",
                          validated.name, frames, from, elapsed, Double(frames) / max(elapsed, 1e-9))
        let drops = snapshot.drops.values.reduce(0, +) + snapshot.sinkDrops.values.reduce(0, +)
        if drops > 0 { line += ", \(drops) dropped" }
        if let p50 = snapshot.latencyPercentile(50), let p99 = snapshot.latencyPercentile(99) {
            line += String(format: ", latency p50 %.1f ms p99 %.1f ms", p50 * 1000, p99 * 1000)
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
        let failed = failedSources
        if !failed.isEmpty {
            for (source, message) in failed.sorted(by: { $0.key < $1.key }) { printError("source '\(source)' failed: \(message)") }
            throw ExitCode(3)
        }
    }
}

/// Renders a batch source's progress on stderr: redrawn in place on a terminal, one line
/// every few seconds otherwise (logs).
/// The plans batch sources post at their start, by source node.
final class BatchPlans: @unchecked Sendable {
    private let lock = NSLock()
    private var plans: [String: BatchPlan] = [:]

    func record(node: String, plan: BatchPlan) {
        lock.lock()
        plans[node] = plan
        lock.unlock()
    }

    var all: [String: BatchPlan] {
        lock.lock()
        defer { lock.unlock() }
        return plans
    }
}

final class ProgressReporter: @unchecked Sendable {
    private let runtime: GraphRuntime
    private let overwrite: Bool
    private let state = NSLock()
    private var plan: BatchProgress?
    private var planStarted = 0.0
    private var failed: Set<String> = []
    private var timer: DispatchSourceTimer?
    private var lastLine = ""

    init(runtime: GraphRuntime, overwrite: Bool) {
        self.runtime = runtime
        self.overwrite = overwrite
    }

    func observe(_ status: StatusEvent) {
        if case .error(let failure) = status.detail, failure.fatal, let source = status.sourceID {
            state.lock()
            failed.insert(source)
            state.unlock()
            return
        }
        guard let progress = BatchProgress(startedStatus: status) else { return }
        state.lock()
        plan = progress
        planStarted = monotonicSeconds()
        state.unlock()
    }

    func start() {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + 0.5, repeating: overwrite ? 0.5 : 5)
        timer.setEventHandler { [weak self] in self?.draw() }
        timer.resume()
        self.timer = timer
    }

    func finish() {
        timer?.cancel()
        draw()
        state.lock()
        defer { state.unlock() }
        if overwrite && !lastLine.isEmpty { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func draw() {
        state.lock()
        defer { state.unlock() }
        guard let plan else { return }
        let estimate = plan.estimate(delivered: runtime.metrics.deliveredProgress(), failed: failed, elapsed: monotonicSeconds() - planStarted)
        let line = BatchProgress.render(estimate)
        guard line != lastLine else { return }
        lastLine = line
        FileHandle.standardError.write(Data((overwrite ? "\r\u{1B}[K" + line : line + "\n").utf8))
    }
}

struct SubscribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subscribe",
        abstract: "Print one JSON line per bus message: {\"topic\":…,\"header\":{…}} (+ \"vector\" with --vectors).")

    @Argument(help: "Endpoint, e.g. tcp://127.0.0.1:5555 or sub+connect:tcp://127.0.0.1:5555.")
    var endpoint: String

    @Option(name: .customLong("topic"), help: "Topic prefix to subscribe to (repeatable), e.g. stats/ or stats/cam1/. Default: everything.")
    var topics: [String] = []

    @Flag(help: "Decode vector payloads into a \"vector\" array.")
    var vectors = false

    @Option(help: "Exit after this many messages.")
    var count: Int?

    @Option(help: "Exit after this many seconds without a message.")
    var idleTimeout: Double?

    @Flag(help: "Exit after end-of-stream has arrived for every source seen.")
    var untilEnd = false

    @Option(help: "Our CURVE certificate with its secret key (NAME.key_secret), for a pipeline with curve_secret_key.")
    var curveKey: String?

    @Option(help: "The publisher's public CURVE certificate (its NAME.key).")
    var curveServerKey: String?

    @Option(help: "Drop the connection on a message larger than this many bytes (default 256 MiB).")
    var maxMessageSize: Int64 = 256 << 20

    func run() throws {
        var curve: CurveClientSettings?
        switch (curveKey, curveServerKey) {
        case (nil, nil): curve = nil
        case (let key?, let serverKey?): curve = try CurveClientSettings(keyFile: key, serverKeyFile: serverKey)
        default: throw ValidationError("--curve-key and --curve-server-key go together")
        }
        guard maxMessageSize > 0 else { throw ValidationError("--max-message-size must be positive") }
        let subscriber = try BusSubscriber(endpoint: try BusEndpoint(parsing: endpoint, defaultRole: .sub), topics: topics,
                                           curve: curve, maxMessageBytes: maxMessageSize)
        var received = 0
        var open = Set<String>()
        var ended = Set<String>()
        // Messages lost on the way show as gaps in each topic's seq (a live publisher drops at a
        // slow subscriber's own queue); reported on stderr so stdout stays one JSON line each.
        var gaps = SequenceGaps()
        defer {
            for (topic, lost) in gaps.lostByTopic.sorted(by: { $0.key < $1.key }) {
                printError("\(lost) message(s) lost on \(topic) (gaps in seq: this subscriber fell behind or the network dropped them)")
            }
        }
        while true {
            guard let message = try subscriber.receive(timeout: idleTimeout) else { break }
            FileHandle.standardOutput.write(Data((message.jsonLine(includeVector: vectors) + "\n").utf8))
            received += 1
            if let seq = message.headerJSON?["seq"]?.intValue { gaps.note(topic: message.topic, seq: seq) }
            if let header = message.headerJSON, let source = header["source"]?.stringValue, source != Envelope.pipelineSource {
                open.insert(source)
                if header["data"]?["event"]?.stringValue == "end_of_stream" { ended.insert(source) }
            }
            if let count, received >= count { break }
            if untilEnd, !open.isEmpty, ended.isSuperset(of: open) { break }
        }
        subscriber.close()
    }
}
