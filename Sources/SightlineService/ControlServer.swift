import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import SightlineCore
import SightlineGraph
import SightlineMedia
import Synchronization

/// The HTTP side of `sightline serve` (Hummingbird 2):
///
///     GET    /healthz          the process answers (liveness)
///     GET    /readyz           the pipeline runs and takes sources (readiness; 503 while stopping)
///     GET    /sources          every source: state, gap seconds, reconnects, fps, frames
///     POST   /sources          {"id": "cam3", "url": "rtsp://…", "options": {"fps": 2}}
///     GET    /sources/ID       one source
///     DELETE /sources/ID       stop it: its end-of-stream is published, its decoder freed
///     GET    /metrics          Prometheus text format
///
/// Sources added here copy the template source node of the pipeline file (its type and
/// options, `options` on top) and feed the same edges.
public final class ServiceController: Sendable {
    public let runtime: GraphRuntime
    public let template: String
    private let board = Mutex(SourceStatusBoard())
    private let metrics = ServiceMetrics()
    private let stopping = Atomic<Bool>(false)
    private let startedAt = Date()

    public init(runtime: GraphRuntime, template: String) {
        self.runtime = runtime
        self.template = template
    }

    /// Feed every status event of the runtime here.
    public func observe(_ status: StatusEvent) {
        let now = Date().timeIntervalSince1970
        board.withLock { $0.apply(status, now: now) }
    }

    /// Called once a second: frame rates.
    public func sampleRates() {
        let frames = runtime.metrics.snapshot().framesIn
        board.withLock { $0.sample(framesIn: frames, now: Date().timeIntervalSince1970) }
    }

    /// A source the runtime started from the file (not through the API).
    public func noteFileSource(id: String, url: String) {
        board.withLock { $0.added(id: id, url: url) }
    }

    public func beginStopping() { stopping.store(true, ordering: .relaxed) }

    // MARK: - Operations (the routes call these; tests call them directly too)

    public func sourceList() -> [SourceStatusBoard.Entry] {
        let now = Date().timeIntervalSince1970
        return board.withLock { $0.list(now: now) }
    }

    public func addSource(id: String, url: String, options: [String: String]) throws -> SourceStatusBoard.Entry {
        if stopping.load(ordering: .relaxed) { throw ControlError.stopping }
        if let problem = MediaLocation.problem(url) { throw SourceControlError.badURL(url, problem) }
        var overrides = options
        overrides["url"] = url
        let nodeOptions = try runtime.sourceOptions(template: template, overrides: overrides)
        try runtime.addSource(id: id, template: template, options: nodeOptions) {
            board.withLock { $0.added(id: id, url: url) }
        }
        let now = Date().timeIntervalSince1970
        return board.withLock { $0.entry(id, now: now) } ?? SourceStatusBoard.Entry(id: id, url: url, state: .starting, gapSeconds: 0, reconnects: 0, fps: 0, framesIn: 0)
    }

    public func removeSource(id: String) throws {
        try runtime.removeSource(id: id)
        board.withLock { $0.removing(id: id) }
    }

    public func metricsText() -> String {
        metrics.render(runtime: runtime, sources: sourceList())
    }

    // MARK: - HTTP

    /// Adds the control routes (sources, health, readiness, metrics) to `router`.
    public func register(on router: Router<BasicRequestContext>) {
        router.get("healthz") { _, _ in
            Self.json(.ok, ["status": "ok", "uptime_s": Date().timeIntervalSince(self.startedAt)])
        }
        router.get("readyz") { _, _ in
            self.stopping.load(ordering: .relaxed)
                ? Self.json(.serviceUnavailable, ["status": "stopping"])
                : Self.json(.ok, ["status": "ready", "sources": self.sourceList().filter { $0.state != .ended && $0.state != .failed }.count])
        }
        router.get("sources") { _, _ in
            Self.json(.ok, ["sources": self.sourceList().map(Self.object)])
        }
        router.get("sources/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let entry = self.sourceList().first(where: { $0.id == id }) else {
                return Self.error(.notFound, SourceControlError.unknown(id).message)
            }
            return Self.json(.ok, Self.object(entry))
        }
        router.post("sources") { request, _ in
            let body = try await request.body.collect(upTo: 64 * 1024)
            guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else {
                return Self.error(.badRequest, "the body must be a JSON object: {\"id\": \"cam3\", \"url\": \"rtsp://…\", \"options\": {…}}")
            }
            guard let id = object["id"] as? String, let url = object["url"] as? String else {
                return Self.error(.badRequest, "\"id\" and \"url\" are required strings")
            }
            var options: [String: String] = [:]
            if let given = object["options"] {
                guard let dictionary = given as? [String: Any] else { return Self.error(.badRequest, "\"options\" must be an object") }
                for (name, value) in dictionary { options[name] = Self.text(value) }
            }
            do {
                let entry = try self.addSource(id: id, url: url, options: options)
                return Self.json(.created, Self.object(entry))
            } catch let error as SourceControlError {
                if case .duplicate = error { return Self.error(.conflict, error.message) }
                return Self.error(.badRequest, error.message)
            } catch let error as ControlError {
                return Self.error(.serviceUnavailable, error.message)
            } catch {
                return Self.error(.badRequest, "\(error)")
            }
        }
        router.delete("sources/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            do {
                try self.removeSource(id: id)
                return Self.json(.ok, ["id": id, "state": "removing"])
            } catch let error as SourceControlError {
                return Self.error(.notFound, error.message)
            }
        }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: self.metricsText())))
        }
    }

    private static func object(_ entry: SourceStatusBoard.Entry) -> [String: Any] {
        var object: [String: Any] = [
            "id": entry.id, "url": entry.url, "state": entry.state.rawValue,
            "gap_seconds": (entry.gapSeconds * 1000).rounded() / 1000, "reconnects": entry.reconnects,
            "fps": (entry.fps * 100).rounded() / 100, "frames_in": entry.framesIn,
        ]
        if let error = entry.error { object["error"] = error }
        return object
    }

    private static func text(_ value: Any) -> String {
        switch value {
        case let string as String: string
        // JSON true/false arrive as NSNumbers of type char.
        case let number as NSNumber: String(cString: number.objCType) == "c" ? (number.boolValue ? "true" : "false") : number.stringValue
        default: "\(value)"
        }
    }

    private static func json(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: Array(data) + [UInt8(ascii: "\n")])))
    }

    private static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, ["error": message])
    }
}

/// Runs one Hummingbird server for whatever routes the command registered (the control API,
/// the review page, or both on one port).
public enum HTTPServer {
    /// Serves until the task is cancelled. `onListening` gets the bound port (for port 0).
    /// `server` picks the protocol handlers (the review page's live view upgrades /live to a
    /// WebSocket).
    public static func run(router: Router<BasicRequestContext>, host: String, port: Int, server: HTTPServerBuilder = .http1(),
                           onListening: @escaping @Sendable (Int) -> Void) async throws {
        // Only failures are worth a line: the command prints where it listens itself, and a
        // cancelled server (how the command stops it) logs its shutdown as errors.
        var logger = Logger(label: "sightline.http")
        logger.logLevel = .critical
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(host, port: port), serverName: "sightline"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) },
            logger: logger)
        // Signals are the command's: it drains the graph first, then ends this task.
        try await app.runService(gracefulShutdownSignals: [])
    }
}

public enum ControlError: UserFacingError {
    case stopping
    public var message: String { "the service is stopping" }
}
