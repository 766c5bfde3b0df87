import ArgumentParser
import Foundation
import SightlineCluster
import SightlineCore
import SightlineGraph
import SightlineMedia
import SightlineNATS
import SightlineNodes
import Synchronization

/// How to reach NATS: shared by submit, worker and cluster.
struct NATSArguments: ParsableArguments {
    @Option(name: .customLong("nats"), help: ArgumentHelp(
        "NATS server URL(s), comma-separated (a cluster's seeds). Default: $SIGHTLINE_NATS, else nats://127.0.0.1:4222.",
        discussion: "user:password@ in a URL logs in with them; tls:// (or a server that asks for TLS) uses TLS."))
    var urls: String?

    @Option(name: .customLong("nats-creds"), help: "A .creds file (user JWT and nkey seed, as nsc writes it).")
    var credentials: String?

    @Option(name: .customLong("nats-token-file"), help: "A file holding the server's auth token (or set $SIGHTLINE_NATS_TOKEN).")
    var tokenFile: String?

    @Option(name: .customLong("nats-nkey"), help: "An nkey login: PUBLIC_KEY:SEED_FILE.")
    var nkey: String?

    @Option(name: .customLong("nats-ca"), help: "CA certificate(s) (PEM) to verify a TLS server with.")
    var caFile: String?

    @Option(help: "Stream and bucket replicas: 1 on one server, 3 on a 3-node cluster.")
    var replicas: Int = 1

    func settings(name: String) throws -> NATSSettings {
        let text = urls ?? ProcessInfo.processInfo.environment["SIGHTLINE_NATS"] ?? "nats://127.0.0.1:4222"
        var settings = NATSSettings(urls: try NATSSettings.parseURLs(text))
        settings.name = name
        settings.credentialsFile = credentials
        settings.caFile = caFile
        if let tokenFile {
            guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw ValidationError("cannot read the token file '\(tokenFile)'")
            }
            settings.token = token.trimmingCharacters(in: .whitespacesAndNewlines)
        } else if let token = ProcessInfo.processInfo.environment["SIGHTLINE_NATS_TOKEN"], !token.isEmpty {
            settings.token = token
        }
        if let nkey {
            guard let colon = nkey.firstIndex(of: ":"), colon != nkey.startIndex else {
                throw ValidationError("--nats-nkey takes PUBLIC_KEY:SEED_FILE, not '\(nkey)'")
            }
            settings.nkey = (String(nkey[..<colon]), String(nkey[nkey.index(after: colon)...]))
        }
        guard (1...5).contains(replicas) else { throw ValidationError("--replicas must be 1 to 5, not \(replicas)") }
        return settings
    }

    var layout: QueueLayout { QueueLayout(replicas: replicas) }
}

/// The pipeline a worker runs and submit keys items by.
struct ClusterPipelineArguments: ParsableArguments {
    @Option(name: .customLong("pipeline"), help: "Pipeline file (YAML) with one `files` source, e.g. Pipelines/batch.yaml.")
    var file: String

    @Option(name: .customLong("set"), help: "Override an option: NODE.OPTION=VALUE (repeatable). Submit and workers must agree.")
    var overrides: [String] = []

    /// The pipeline for one input file and output folder (nil: the file's own).
    func load(input: String? = nil, output: String? = nil) throws -> ValidatedPipeline {
        let pipeline = try loadPipeline(file: file, overrides: overrides, output: output) { spec in
            input.flatMap { spec.applyInput($0, sourceTypes: ["files"]) }.map { [$0] } ?? []
        }
        guard pipeline.nodes.filter({ $0.type == "files" }).count == 1, pipeline.nodes.filter({ $0.descriptor.role == .source }).count == 1 else {
            throw ValidationError("\(file): a cluster pipeline has exactly one source, of type `files` (like Pipelines/batch.yaml)")
        }
        return pipeline
    }

    /// The pipeline for one live camera: its one `source` node renamed to the camera's id (so
    /// topics and subjects say which camera) and pointed at the camera's URL.
    func loadCamera(_ camera: CameraWorker.Camera?) throws -> ValidatedPipeline {
        try loadPipeline(file: file, overrides: overrides, output: nil) { spec in
            let sources = spec.nodes.indices.filter { spec.nodes[$0].type == "source" }
            guard sources.count == 1, let index = sources.first else {
                throw ValidationError("\(file): a camera pipeline has exactly one source of type `source` (like Pipelines/live.yaml)")
            }
            guard let camera else { return [] }
            let old = spec.nodes[index].id
            spec.nodes[index].id = camera.id
            for edge in spec.edges.indices where spec.edges[edge].from == old { spec.edges[edge].from = camera.id }
            return spec.applyInput("\(camera.id)=\(camera.url)").map { [$0] } ?? []
        }
    }
}

/// One camera's pipeline, run by a camera worker while it holds the camera's lease.
final class CameraStream: CameraWorker.Stream, @unchecked Sendable {
    let runtime: GraphRuntime
    private let ended = Atomic<Bool>(false)

    init(pipeline: ValidatedPipeline) throws {
        runtime = try GraphRuntime(pipeline: pipeline, registry: BuiltinNodes.registry)
        runtime.statusObserver = echoTrouble
        runtime.start()
        Thread.detachNewThread { [self] in
            _ = runtime.wait()
            ended.store(true, ordering: .releasing)
        }
    }

    func stop() { _ = runtime.stop(drainTimeout: 2) }
    var hasEnded: Bool { ended.load(ordering: .acquiring) }
}

struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Put videos on the NATS JetStream work queue for `sightline worker`s to process.",
        discussion: """
        One message per file, keyed by its content (sha256) and the pipeline's results hash: a file
        submitted twice, or under two names, is processed once. Files already finished (the
        cluster's done journal) are skipped; a changed file is a new item. Workers must see the
        same paths (a shared folder). See Docs/scale.md.
        """)

    @OptionGroup var nats: NATSArguments
    @OptionGroup var pipeline: ClusterPipelineArguments

    @Argument(help: "Video files, folders (taken recursively) or .txt lists of paths.")
    var inputs: [String]

    @Flag(help: "Print one JSON line per item instead of a summary.")
    var json = false

    func run() throws {
        guard !inputs.isEmpty else { throw ValidationError("name at least one video file, folder or list") }
        let validated = try pipeline.load()
        let hash = validated.resultsHash
        var files: [(path: String, name: String)] = []
        for input in inputs {
            let paths = try FilesSourceNode.inputFiles(input, extensions: FilesSourceNode.defaultExtensions)
            files += zip(paths, FilesSourceNode.uniqueNames(paths, relativeTo: FilesSourceNode.baseFolder(input))).map { ($0, $1) }
        }
        let connection = try NATSConnection(try nats.settings(name: "sightline-submit"))
        let js = connection.jetStream
        let layout = nats.layout
        try layout.ensure(js)
        let done = try layout.doneBucket(js)
        var queued = 0, duplicates = 0, finished = 0
        for file in files {
            let digest = try sha256(ofFile: file.path)
            let item = WorkItem(path: file.path, name: file.name, sha256: digest, pipelineHash: hash, submitted: Date().timeIntervalSince1970)
            var state = "queued"
            if try done.get(item.key) != nil {
                state = "already done"
                finished += 1
            } else {
                let ack = try js.publish(subject: QueueLayout.workSubject(pipelineHash: hash), data: item.encoded(), messageID: item.key)
                if ack.duplicate {
                    state = "already queued"
                    duplicates += 1
                } else {
                    queued += 1
                }
            }
            if json {
                print(String(decoding: try JSONSerialization.data(withJSONObject: ["name": item.name, "path": item.path, "key": item.key, "state": state],
                                                                 options: [.sortedKeys]), as: UTF8.self))
            }
        }
        if !json {
            print("submitted \(queued) item(s) for pipeline '\(validated.name)' (\(hash.prefix(12))); \(duplicates) already queued, \(finished) already done")
        }
    }
}

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Process videos from the NATS JetStream work queue, one at a time, until stopped.",
        discussion: """
        Each item is written into OUTPUT/.staging/KEY.WORKER/ and renamed to OUTPUT/KEY/ when
        complete (with item.json saying what it is), then acknowledged. While it works the worker
        sends in-progress acks; if it dies, the server gives the item to another worker after
        --ack-wait seconds. A failed item is retried with growing delays and, after
        --max-deliveries, published on sightline_queue.dead.PIPELINE with its error.
        SIGINT/SIGTERM: finish the current item, then exit.
        """)

    @OptionGroup var nats: NATSArguments
    @OptionGroup var pipeline: ClusterPipelineArguments

    @Option(help: "Folder for the items' outputs (shared by the workers, or one per machine).")
    var output: String = "sightline-cluster"

    @Option(help: "Seconds without an ack or in-progress before the server redelivers an item.")
    var ackWait: Double = 30

    @Option(help: "Deliveries of an item before it goes to the dead-letter subject.")
    var maxDeliveries: Int = 3

    @Option(help: "Worker id (default HOST-PID).")
    var id: String?

    @Option(help: "Exit after the queue has been empty this many seconds (default: run until stopped).")
    var idleExit: Double?

    @Flag(help: "One JSON line per event on stdout (started, finished, retrying, dead-lettered; acquired, released).")
    var events = false

    @Flag(help: "Run live cameras instead of batch items: the cameras `cluster add-source` lists, each held through a lease; the pipeline has one `source` node (like Pipelines/live.yaml).")
    var cameras = false

    @Option(help: "With --cameras: the most cameras this worker runs.")
    var maxCameras: Int = 4

    @Option(help: "With --cameras: seconds a lease lives without renewal; a dead worker's cameras move within about this long.")
    var leaseTTL: Double = 10

    func run() throws {
        FFmpegLogLevel.quiet.apply()
        if cameras { return try runCameras() }
        guard ackWait >= 1 else { throw ValidationError("--ack-wait must be at least 1 second") }
        guard maxDeliveries >= 1 else { throw ValidationError("--max-deliveries must be at least 1") }
        let validated = try pipeline.load()
        let hash = validated.resultsHash
        let workerID = try self.workerID()
        let outputURL = URL(fileURLWithPath: output).standardizedFileURL
        try FileManager.default.createDirectory(at: outputURL, withIntermediateDirectories: true)
        let connection = try NATSConnection(try nats.settings(name: "sightline-worker-\(workerID)"))
        var settings = Worker.Settings(id: workerID, pipelineHash: hash, output: outputURL)
        settings.ackWait = ackWait
        settings.policy = DeliveryPolicy(maxDeliveries: maxDeliveries)
        settings.idleExit = idleExit
        let pipeline = self.pipeline
        let worker = Worker(connection: connection, settings: settings, layout: nats.layout) { item, staging in
            let itemPipeline = try pipeline.load(input: item.path, output: staging.path)
            guard itemPipeline.resultsHash == item.pipelineHash else {
                throw ClusterError("item '\(item.name)' was submitted for pipeline \(item.pipelineHash.prefix(12)), this worker runs \(itemPipeline.resultsHash.prefix(12))",
                                   permanent: true)
            }
            let runtime = try GraphRuntime(pipeline: itemPipeline, registry: BuiltinNodes.registry)
            runtime.start()
            _ = runtime.wait()
            if let (source, message) = runtime.failedSources.first {
                throw ClusterError("\(item.name): source '\(source)' failed: \(message)")
            }
        }
        let json = events
        worker.onEvent = { event in Self.report(event, json: json, worker: workerID) }
        let trap = SignalTrap {
            FileHandle.standardError.write(Data("sightline: worker stopping after the current item\n".utf8))
            worker.stop()
        }
        defer { withExtendedLifetime(trap) {} }
        FileHandle.standardError.write(Data("sightline: worker \(workerID) pulling pipeline '\(validated.name)' (\(hash.prefix(12))) into \(outputURL.path)\n".utf8))
        try worker.run()
        let counts = worker.counts
        FileHandle.standardError.write(Data("sightline: worker \(workerID) done: \(counts.done) item(s), \(counts.failed) failed\n".utf8))
    }

    func runCameras() throws {
        guard maxCameras >= 1 else { throw ValidationError("--max-cameras must be at least 1") }
        guard leaseTTL >= 2 else { throw ValidationError("--lease-ttl must be at least 2 seconds") }
        _ = try pipeline.loadCamera(nil)
        let workerID = try self.workerID()
        let connection = try NATSConnection(try nats.settings(name: "sightline-camera-worker-\(workerID)"))
        let pipeline = self.pipeline
        let worker = CameraWorker(connection: connection, id: workerID, maxCameras: maxCameras, leaseTTL: leaseTTL, layout: nats.layout) { camera in
            try CameraStream(pipeline: try pipeline.loadCamera(camera))
        }
        let json = events
        worker.onEvent = { event in
            var fields: [String: Any] = ["worker": workerID, "time": Date().timeIntervalSince1970]
            let line: String
            switch event {
            case .acquired(let camera, let previous, let gap):
                fields.merge(["event": "acquired", "camera": camera]) { $1 }
                if let previous { fields["previous_holder"] = previous }
                if let gap { fields["gap_seconds"] = gap }
                line = "took camera \(camera)" + (gap.map { String(format: " (unattended %.1f s since %@)", $0, previous ?? "?") } ?? "")
            case .released(let camera, let reason):
                fields.merge(["event": "released", "camera": camera, "reason": reason]) { $1 }
                line = "gave up camera \(camera): \(reason)"
            case .trouble(let text):
                fields.merge(["event": "trouble", "error": text]) { $1 }
                line = text
            }
            Self.emit(fields, line: line, json: json, label: "camera worker \(workerID)")
        }
        let trap = SignalTrap {
            FileHandle.standardError.write(Data("sightline: camera worker stopping: releasing its cameras\n".utf8))
            worker.stop()
        }
        defer { withExtendedLifetime(trap) {} }
        FileHandle.standardError.write(Data("sightline: camera worker \(workerID) up to \(maxCameras) camera(s), lease \(leaseTTL) s\n".utf8))
        try worker.run()
    }

    static func report(_ event: Worker.Event, json: Bool, worker: String) {
        var fields: [String: Any] = ["worker": worker, "time": Date().timeIntervalSince1970]
        let line: String
        switch event {
        case .started(let item, let delivery):
            fields.merge(["event": "started", "name": item.name, "key": item.key, "delivery": delivery,
                          "queued_seconds": max(0, Date().timeIntervalSince1970 - item.submitted)]) { $1 }
            line = "started \(item.name) (delivery \(delivery))"
        case .finished(let item, let seconds, let pipelineSeconds, let committed):
            fields.merge(["event": "finished", "name": item.name, "key": item.key, "seconds": seconds, "pipeline_seconds": pipelineSeconds,
                          "committed": committed]) { $1 }
            line = String(format: "finished %@ in %.2f s%@", item.name, seconds, committed ? "" : " (another worker committed it first)")
        case .alreadyDone(let item):
            fields.merge(["event": "already_done", "name": item.name, "key": item.key]) { $1 }
            line = "\(item.name) is already done; acknowledged"
        case .retrying(let item, let error, let delay):
            fields.merge(["event": "retrying", "name": item?.name ?? "", "error": error, "after": delay]) { $1 }
            line = "\(item?.name ?? "item") failed (\(error)); retry in \(delay) s"
        case .deadLettered(let item, let error):
            fields.merge(["event": "dead_letter", "name": item?.name ?? "", "error": error]) { $1 }
            line = "\(item?.name ?? "item") given up: \(error)"
        case .trouble(let text):
            fields.merge(["event": "trouble", "error": text]) { $1 }
            line = text
        }
        emit(fields, line: line, json: json, label: "worker \(worker)")
    }

    /// An event as one JSON line on stdout (--events) or one readable line on stderr.
    static func emit(_ fields: [String: Any], line: String, json: Bool, label: String) {
        if json, let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        } else {
            printError("\(label): \(line)")
        }
    }

    /// `--id`, or HOST-PID; it names NATS keys and staging folders, so only letters, digits,
    /// - and _ (in both modes).
    func workerID() throws -> String {
        let workerID = id ?? "\(ProcessInfo.processInfo.hostName.split(separator: ".").first ?? "host")-\(getpid())"
        guard !workerID.isEmpty, workerID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_".contains($0)) }) else {
            throw ValidationError("--id may hold letters, digits, - and _ only")
        }
        return workerID
    }
}

struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "The work queue across machines: its state.",
        subcommands: [ClusterStatusCommand.self, AddSourceCommand.self, RemoveSourceCommand.self])
}

struct AddSourceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-source",
        abstract: "Add a live camera for `sightline worker --cameras` to run (a key-value write; one worker takes it).")

    @OptionGroup var nats: NATSArguments
    @Argument(help: "Camera id: letters, digits, _ and - (its topics and subjects use it).")
    var id: String
    @Argument(help: "Its URL (rtsp://, udp://, tcp://, a file, anything FFmpeg opens).")
    var url: String

    func run() throws {
        guard SubjectToken.isValid(id) else {
            throw ValidationError("a camera id holds letters, digits, _ and - only, not '\(id)'")
        }
        let connection = try NATSConnection(try nats.settings(name: "sightline-add-source"))
        let bucket = try CameraWorker.cameras(connection.jetStream, replicas: nats.replicas)
        try bucket.put(id, try JSONEncoder().encode(CameraWorker.Camera(id: id, url: url)))
        print("camera \(id) added: \(url)")
    }
}

struct RemoveSourceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-source",
        abstract: "Remove a live camera: the worker holding it stops it within about a second.")

    @OptionGroup var nats: NATSArguments
    @Argument(help: "Camera id.")
    var id: String

    func run() throws {
        let connection = try NATSConnection(try nats.settings(name: "sightline-remove-source"))
        let bucket = try CameraWorker.cameras(connection.jetStream, replicas: nats.replicas)
        guard try bucket.get(id) != nil else { throw ValidationError("no camera '\(id)' (see sightline cluster status)") }
        try bucket.delete(id)
        print("camera \(id) removed")
    }
}

struct ClusterStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Workers, queue depth, items in flight, finished items and dead letters.")

    @OptionGroup var nats: NATSArguments

    @Option(name: .customLong("pipeline"), help: "Also show this pipeline's queue when no worker runs it yet.")
    var pipelineFile: String?

    @Option(name: .customLong("set"), help: "Overrides the pipeline was submitted with (NODE.OPTION=VALUE, repeatable).")
    var overrides: [String] = []

    @Option(help: "Dead letters to list (newest first).")
    var deadLetters: Int = 10

    @Flag(help: "One JSON object instead of text.")
    var json = false

    func run() throws {
        let connection = try NATSConnection(try nats.settings(name: "sightline-status"))
        let js = connection.jetStream
        let layout = nats.layout
        try layout.ensure(js)
        let decoder = JSONDecoder()
        let workersBucket = try layout.workersBucket(js)
        let workers = try workersBucket.keys().sorted().compactMap { key in
            try workersBucket.get(key).flatMap { try? decoder.decode(WorkerBeat.self, from: $0.value) }
        }
        var pipelines = Set(workers.map(\.pipelineHash))
        if let pipelineFile {
            var arguments = try ClusterPipelineArguments.parse(["--pipeline", pipelineFile])
            arguments.overrides = overrides
            pipelines.insert(try arguments.load().resultsHash)
        }
        let work = try js.streamState(QueueLayout.workStream)
        var queues: [[String: Any]] = []
        for hash in pipelines.sorted() {
            let consumer = QueueLayout.consumer(pipelineHash: hash)
            guard let state = try? js.consumerState(stream: QueueLayout.workStream, durable: consumer) else { continue }
            queues.append(["pipeline": String(hash.prefix(12)), "queued": state.pending, "in_flight": state.ackPending,
                           "redelivered": state.redelivered, "idle_pulls": state.waiting])
        }
        let done = try layout.doneBucket(js).keys().count
        let dead = try js.streamState(QueueLayout.deadStream)
        var letters: [DeadLetter] = []
        if dead.messages > 0, deadLetters > 0 {
            var sequence = dead.lastSequence
            while sequence >= max(dead.firstSequence, 1), letters.count < deadLetters {
                if let data = try? js.message(stream: QueueLayout.deadStream, sequence: sequence),
                   let letter = try? decoder.decode(DeadLetter.self, from: data) { letters.append(letter) }
                sequence -= 1
            }
        }
        let cameraBucket = try CameraWorker.cameras(js, replicas: nats.replicas)
        let holders = try CameraWorker.holders(try CameraWorker.leases(js, ttl: 10, replicas: nats.replicas))
        let cameras = try cameraBucket.keys().sorted().compactMap { key in
            try cameraBucket.get(key).flatMap { try? decoder.decode(CameraWorker.Camera.self, from: $0.value) }
        }
        let now = Date().timeIntervalSince1970
        if json {
            let object: [String: Any] = [
                "cameras": cameras.map { ["id": $0.id, "url": $0.url, "holder": holders[$0.id] ?? ""] },
                "workers": workers.map { beat -> [String: Any] in
                    var entry: [String: Any] = ["id": beat.id, "host": beat.host, "pid": beat.pid, "pipeline": String(beat.pipelineHash.prefix(12)),
                                                "done": beat.done, "failed": beat.failed]
                    if let item = beat.item { entry["item"] = item }
                    if let started = beat.itemStarted { entry["item_seconds"] = now - started }
                    return entry
                },
                "work_stream_messages": work.messages, "queues": queues, "done": done, "dead_letters": dead.messages,
                "recent_dead_letters": letters.map { ["name": $0.item?.name ?? "", "error": $0.error, "deliveries": $0.deliveries, "worker": $0.worker] },
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
            return
        }
        print("work queue: \(work.messages) item(s) not yet acknowledged; \(done) done; \(dead.messages) dead letter(s)")
        for queue in queues {
            print("  pipeline \(queue["pipeline"] ?? ""): \(queue["queued"] ?? 0) queued, \(queue["in_flight"] ?? 0) in flight, \(queue["redelivered"] ?? 0) redelivered, \(queue["idle_pulls"] ?? 0) idle pull(s)")
        }
        print("workers: \(workers.count)")
        for beat in workers {
            let doing = beat.item.map { item in " working on \(item)" + (beat.itemStarted.map { String(format: " for %.0f s", now - $0) } ?? "") } ?? " idle"
            print("  \(beat.id) (\(beat.host), pid \(beat.pid), pipeline \(beat.pipelineHash.prefix(12))):\(doing); \(beat.done) done, \(beat.failed) failed")
        }
        if !cameras.isEmpty {
            print("cameras: \(cameras.count)")
            for camera in cameras { print("  \(camera.id) (\(camera.url)): \(holders[camera.id].map { "held by \($0)" } ?? "not held")") }
        }
        if !letters.isEmpty {
            print("dead letters (newest first):")
            for letter in letters { print("  \(letter.item?.name ?? "?"): \(letter.error) (after \(letter.deliveries) deliveries, \(letter.worker))") }
        }
    }
}
