import ArgumentParser
import Foundation
import Hummingbird
import SightlineBus
import SightlineCore
import SightlineGraph
import SightlineIndex
import SightlineKernels
import SightlineMedia
import SightlineModels
import SightlineNodes
import SightlineReview
import SightlineService

/// `sightline serve`: one long-running pipeline whose sources come and go over HTTP.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the review page (search, filmstrips, review queue) over a results index, and/or run a pipeline as a service: sources over HTTP, health, metrics.",
        discussion: """
        Without --pipeline it serves the review page and its JSON API (Docs/review-api.yaml) for the
        index in --index (default: ./ if it holds sightline-index.sqlite, else ./sightline-batch):

          sightline serve                        # then open http://127.0.0.1:8080/

        With --pipeline it also runs the pipeline; the page is served when its output folder holds
        an index (or --index names one).

        The pipeline's source node is a template: each source added over HTTP copies its type and
        options (the request's options on top) and feeds the same edges. The file's own sources
        do not run unless --start-file-sources.

          curl -X POST localhost:8080/sources -d '{"id":"cam3","url":"rtsp://10.0.0.3/stream","options":{"fps":2}}'
          curl localhost:8080/sources            # state, gap seconds, reconnects, fps per source
          curl -X DELETE localhost:8080/sources/cam3
          curl localhost:8080/metrics            # Prometheus
          curl localhost:8080/healthz ; curl localhost:8080/readyz

        SIGINT/SIGTERM drain the pipeline (end-of-stream for every source), then stop the server.
        See Docs/service.md.
        """)

    @Option(name: .customLong("pipeline"), help: "Pipeline file (YAML) to run, e.g. Pipelines/serve.yaml.")
    var pipelineFile: String?

    @Option(help: "Folder holding sightline-index.sqlite for the review page.")
    var index: String?

    @Option(name: .customLong("set"), help: "Override an option: NODE.OPTION=VALUE (repeatable).")
    var overrides: [String] = []

    @Option(name: .customLong("output"), help: "Folder for what the pipeline writes.")
    var output: String?

    @Option(help: "HOST:PORT for the HTTP API (port 0: any free port, printed at start).")
    var listen: String = "127.0.0.1:8080"

    @Option(help: "The source node new sources copy (default: the pipeline's first source).")
    var template: String?

    @Flag(help: "Also run the sources the pipeline file names.")
    var startFileSources = false

    @Option(help: "After SIGINT/SIGTERM, seconds to drain queued frames before discarding them.")
    var drainTimeout: Double = 10

    @Flag(help: "Do not echo status events (errors, gaps, reconnects) on stderr.")
    var quiet = false

    @Option(help: "Publish each reviewer verdict on this ZeroMQ endpoint as a `review` message (topic review/SOURCE/), e.g. pub+bind:tcp://127.0.0.1:5557. Default: not published.")
    var reviewBus: String?

    @Option(help: "Relay this bus to the page's live view (a WebSocket on /live), e.g. tcp://127.0.0.1:5555 — the pipeline's publish endpoint. Default: no live view.")
    var liveBus: String?

    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        FFmpegLogLevel.quiet.apply()
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen wants HOST:PORT, e.g. 127.0.0.1:8080")
        }
        let host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if !["127.0.0.1", "localhost", "::1"].contains(host) {
            printError("warning: the HTTP API on \(host) lets anyone who can reach it \(pipelineFile == nil ? "read the index and record verdicts" : "add and remove sources"); put it behind an authenticating proxy or keep it on loopback")
        }
        guard let pipelineFile else {
            try serveReviewOnly(host: host, port: port)
            return
        }
        var arguments = [pipelineFile]
        for override in overrides { arguments += ["--set", override] }
        if let output { arguments += ["--output", output] }
        let validated = try PipelineArguments.parse(arguments).load()
        let runtime: GraphRuntime
        do {
            runtime = try GraphRuntime(pipeline: validated, registry: BuiltinNodes.registry)
        } catch {
            throw ErrorInContext("pipeline '\(validated.name)'", error)
        }
        guard let template = template ?? runtime.fileSourceIDs.first else {
            throw ValidationError("the pipeline has no source node to use as a template")
        }
        try runtime.holdOpen(template: template, startFileSources: startFileSources)
        let controller = ServiceController(runtime: runtime, template: template)
        if startFileSources {
            for node in validated.nodes where node.descriptor.role == .source {
                controller.noteFileSource(id: node.id, url: node.options.string("url") ?? "")
            }
        }
        let quiet = self.quiet
        runtime.statusObserver = { status in
            controller.observe(status)
            if !quiet { echoTrouble(status) }
        }
        let rates = DispatchSource.makeTimerSource(queue: .global())
        rates.schedule(deadline: .now() + 1, repeating: 1)
        rates.setEventHandler { controller.sampleRates() }
        rates.resume()

        let router = Router()
        controller.register(on: router)
        let review = try reviewServer(folder: index ?? validated.paths.outputDirectory, required: index != nil)
        review?.register(on: router)
        let serverFailure = ServerFailure()
        let server = Task {
            do {
                try await HTTPServer.run(router: router, host: host, port: port, server: review?.serverBuilder ?? .http1()) { bound in
                    printError("serving pipeline '\(validated.name)' on http://\(host):\(bound) (template source '\(template)')"
                               + (review.map { "; review page for \($0.store.folder.path) at /" } ?? ""))
                }
            } catch is CancellationError {
            } catch {
                serverFailure.record(error)
                _ = runtime.stop(drainTimeout: 0)
            }
        }
        let drainTimeout = self.drainTimeout
        let trap = SignalTrap {
            controller.beginStopping()
            printError("stopping: draining queues (up to \(drainTimeout) s)")
            _ = runtime.stop(drainTimeout: drainTimeout)
        }
        defer { withExtendedLifetime(trap) {} }
        runtime.start()
        _ = runtime.wait()
        rates.cancel()
        server.cancel()
        if let error = serverFailure.error { throw ErrorInContext("HTTP API on \(listen)", error) }
        let frames = runtime.metrics.snapshot().framesIn.values.reduce(0, +)
        printError("pipeline '\(validated.name)': served \(controller.sourceList().count) source(s), \(frames) frames")
    }
}

extension ServeCommand {
    /// The review page over the index in `folder`; nil when there is none and none was asked for.
    func reviewServer(folder: String, required: Bool) throws -> ReviewServer? {
        let store: IndexStore
        do {
            store = try IndexStore(folder: folder, create: false)
        } catch IndexError.missing where !required {
            return nil
        }
        // Queries are embedded like the index's shot vectors (MiniLM); without the model the
        // page searches full text only, and says so once here.
        let embedder: MiniLMEmbedder?
        do {
            KernelThreads.setBLASThreads(1)
            embedder = try MiniLMEmbedder(store: cache.store)
        } catch {
            printError("warning: search is full-text only: MiniLM cannot be loaded (\(error))")
            embedder = nil
        }
        let embed: (@Sendable (String) -> [Float]?)? = embedder.map { model in
            let lock = NSLock()  // one query at a time through the model's buffers
            return { text in lock.withLock { try? model.embed([text]).first } }
        }
        var onVerdict: (@Sendable (FlagForReview) -> Void)? = nil
        if let reviewBus {
            let publisher = try VerdictPublisher(endpoint: reviewBus)
            onVerdict = { flag in publisher.publish(flag) }
        }
        let live = try liveBus.map { try LiveFeed(endpoint: $0) }
        return ReviewServer(store: store, embed: embed, onVerdict: onVerdict, live: live)
    }

    func serveReviewOnly(host: String, port: Int) throws {
        let folder = index ?? (FileManager.default.fileExists(atPath: IndexStore.fileName) ? "." : "sightline-batch")
        guard let review = try reviewServer(folder: folder, required: true) else { return }
        let router = Router()
        review.register(on: router)
        router.get("healthz") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}\n"))) }
        let done = DispatchSemaphore(value: 0)
        let failure = ServerFailure()
        let server = Task {
            do {
                try await HTTPServer.run(router: router, host: host, port: port, server: review.serverBuilder) { bound in
                    printError("review page for \(review.store.folder.path) on http://\(host):\(bound)/")
                }
            } catch is CancellationError {
            } catch {
                failure.record(error)
            }
            done.signal()
        }
        let trap = SignalTrap { server.cancel() }
        defer { withExtendedLifetime(trap) {} }
        done.wait()
        if let error = failure.error { throw ErrorInContext("HTTP server on \(listen)", error) }
    }
}

/// Reviewer verdicts on the bus: one `review` message per verdict, so whatever acts on flags
/// (an alerting service, an audit log) hears the human decision as it is made. A verdict is
/// already stored when it is published; a full or absent subscriber never holds up the page.
final class VerdictPublisher: @unchecked Sendable {
    private let lock = NSLock()
    private let publisher: BusPublisher
    private var encoder = EnvelopeEncoder(pipelineName: "review", pipelineHash: "")

    init(endpoint: String) throws {
        let parsed = try BusEndpoint(parsing: endpoint, defaultRole: .pub)
        publisher = try BusPublisher(endpoints: [parsed], options: BusPublisher.Options(whenFull: .drop))
    }

    func publish(_ flag: FlagForReview) {
        guard let verdict = flag.latest else { return }
        lock.withLock {
            let message = encoder.encode(kind: "review", source: flag.source, start: flag.start, end: flag.end, data: [
                "flag_id": .int(flag.id), "category": .string(flag.category), "peak": .double(flag.peak),
                "decision": .string(verdict.decision.rawValue), "note": .string(verdict.note), "reviewer": .string(verdict.reviewer),
                "at": .double(verdict.at), "location": .string(flag.location),
            ], wallClock: Date().timeIntervalSince1970)
            _ = try? publisher.publish(message)
        }
    }
}

/// The HTTP server's error, if it failed (port in use): reported after the graph stopped.
final class ServerFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    func record(_ error: Error) { lock.withLock { stored = error } }
    var error: Error? { lock.withLock { stored } }
}
