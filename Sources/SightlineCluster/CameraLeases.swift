import Foundation
import SightlineNATS
import Synchronization

/// Live cameras spread over workers: the cameras to run are keys of `sightline-cameras`
/// (`cluster add-source` / `remove-source`); each is held through a key of `sightline-leases`,
/// whose TTL (default 10 s) expires unless its holder renews it. Every second a worker renews
/// its leases, reads the state, and acquires or releases as `LeasePlanner` says. Losing a renew
/// (the key expired and someone else took it) stops that camera here at once.
public final class CameraWorker: @unchecked Sendable {
    public static let camerasBucket = "sightline-cameras"
    public static let leasesBucket = "sightline-leases"
    /// Camera → the last holder and when it last renewed (no TTL): how long a camera was
    /// unattended when another worker takes it.
    public static let historyBucket = "sightline-lease-history"
    /// Live camera workers (heartbeats with a TTL): the count fair shares divide by.
    public static let workersBucket = "sightline-camera-workers"

    public struct Camera: Codable, Sendable, Equatable {
        public var id: String
        public var url: String
        public init(id: String, url: String) {
            self.id = id
            self.url = url
        }
    }

    struct Lease: Codable {
        var holder: String
        var renewed: Double
    }

    /// Something running one camera; `stop` ends it (drains and publishes its end).
    public protocol Stream: AnyObject, Sendable {
        func stop()
        var hasEnded: Bool { get }
    }

    public enum Event: Sendable {
        case acquired(camera: String, previousHolder: String?, gap: Double?)
        case released(camera: String, reason: String)
        case trouble(String)
    }

    let connection: NATSConnection
    let id: String
    let planner: LeasePlanner
    let leaseTTL: Double
    let layout: QueueLayout
    let start: @Sendable (Camera) throws -> any Stream
    public var onEvent: @Sendable (Event) -> Void = { _ in }
    private let stopping = Atomic<Bool>(false)
    private var running: [String: (stream: any Stream, revision: UInt64)] = [:]

    public init(connection: NATSConnection, id: String, maxCameras: Int, leaseTTL: Double = 10, layout: QueueLayout = QueueLayout(),
                start: @escaping @Sendable (Camera) throws -> any Stream) {
        self.connection = connection
        self.id = id
        self.planner = LeasePlanner(maxPerWorker: maxCameras)
        self.leaseTTL = leaseTTL
        self.layout = layout
        self.start = start
    }

    public func stop() { stopping.store(true, ordering: .relaxed) }

    public static func cameras(_ js: JetStream, replicas: Int = 1) throws -> KeyValueBucket {
        try js.keyValue(bucket: camerasBucket, replicas: replicas)
    }

    public static func leases(_ js: JetStream, ttl: Double, replicas: Int = 1) throws -> KeyValueBucket {
        try js.keyValue(bucket: leasesBucket, ttl: ttl, replicas: replicas)
    }

    /// Holder of each live lease.
    public static func holders(_ bucket: KeyValueBucket) throws -> [String: String] {
        var result: [String: String] = [:]
        for key in try bucket.keys() {
            if let entry = try bucket.get(key), let lease = try? JSONDecoder().decode(Lease.self, from: entry.value) { result[key] = lease.holder }
        }
        return result
    }

    public func run() throws {
        let js = connection.jetStream
        let cameras = try Self.cameras(js, replicas: layout.replicas)
        let leases = try Self.leases(js, ttl: leaseTTL, replicas: layout.replicas)
        let history = try js.keyValue(bucket: Self.historyBucket, replicas: layout.replicas)
        let workers = try js.keyValue(bucket: Self.workersBucket, ttl: layout.workerTTL, replicas: layout.replicas)
        let decoder = JSONDecoder()
        var lastRenew = Date.distantPast
        defer {
            for (camera, held) in running {
                held.stream.stop()
                try? leases.delete(camera)
                onEvent(.released(camera: camera, reason: "worker stopping"))
            }
            try? workers.delete(id)
        }
        while !stopping.load(ordering: .relaxed) {
            do {
                try workers.put(id, Data("{\"id\":\"\(id)\",\"cameras\":\(running.count),\"time\":\(Date().timeIntervalSince1970)}".utf8))
                // Renew well inside the TTL.
                if Date().timeIntervalSince(lastRenew) >= leaseTTL / 3 {
                    for camera in running.keys.sorted() { renew(camera, leases: leases, history: history) }
                    lastRenew = Date()
                }
                for (camera, held) in running where held.stream.hasEnded {
                    running[camera] = nil
                    try? leases.delete(camera)
                    onEvent(.released(camera: camera, reason: "its stream ended"))
                }
                var wanted: [String: Camera] = [:]
                for key in try cameras.keys() {
                    if let entry = try cameras.get(key), let camera = try? decoder.decode(Camera.self, from: entry.value) { wanted[key] = camera }
                }
                let view = LeasePlanner.View(cameras: Set(wanted.keys), leases: try Self.holders(leases),
                                             liveWorkers: Set(try workers.keys()), me: id)
                for action in planner.plan(view) {
                    switch action {
                    case .release(let camera):
                        if let held = running.removeValue(forKey: camera) { held.stream.stop() }
                        try? leases.delete(camera)
                        onEvent(.released(camera: camera, reason: wanted[camera] == nil ? "removed" : "rebalancing"))
                    case .acquire(let camera):
                        guard let spec = wanted[camera] else { continue }
                        let now = Date().timeIntervalSince1970
                        let lease = (try? JSONEncoder().encode(Lease(holder: id, renewed: now))) ?? Data()
                        guard let revision = try leases.create(camera, lease) else { continue }  // another worker was quicker
                        let previous = (try? history.get(camera)).flatMap { $0 }.flatMap { try? decoder.decode(Lease.self, from: $0.value) }
                        do {
                            let stream = try start(spec)
                            running[camera] = (stream, revision)
                            _ = try? history.put(camera, lease)
                            let gap = previous.flatMap { $0.holder == id ? nil : now - $0.renewed }
                            onEvent(.acquired(camera: camera, previousHolder: previous?.holder, gap: gap))
                            announce(camera: camera, previous: previous?.holder, gap: gap, at: now)
                        } catch {
                            try? leases.delete(camera)
                            onEvent(.trouble("camera \(camera): \(error)"))
                        }
                    }
                }
            } catch {
                onEvent(.trouble("\(error)"))
            }
            Thread.sleep(forTimeInterval: 1)
        }
    }

    /// Tells subscribers on NATS (`sightline.status.CAMERA`, a status message as Docs/bus.md
    /// describes) that the camera now runs here, and for how long it may have been unattended:
    /// the time since the previous holder last renewed its lease (an upper bound).
    private func announce(camera: String, previous: String?, gap: Double?, at time: Double) {
        var data: [String: Any] = ["event": "camera_moved", "worker": id]
        if let previous { data["previous_holder"] = previous }
        if let gap { data["gap_seconds"] = (gap * 1000).rounded() / 1000 }
        let header: [String: Any] = ["kind": "status", "source": camera, "wallclock": time, "data": data]
        guard let bytes = try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]) else { return }
        try? connection.publish(subject: "sightline.status.\(camera)", data: [UInt8](bytes), headerKey: "Sightline-Header-Length",
                                headerValue: String(bytes.count), intoStream: false)
    }

    private func renew(_ camera: String, leases: KeyValueBucket, history: KeyValueBucket) {
        guard let held = running[camera] else { return }
        let lease = (try? JSONEncoder().encode(Lease(holder: id, renewed: Date().timeIntervalSince1970))) ?? Data()
        do {
            if let revision = try leases.update(camera, lease, revision: held.revision) {
                running[camera]?.revision = revision
                _ = try? history.put(camera, lease)
                return
            }
        } catch {
            // Cannot reach NATS: keep running; the lease expires if this lasts, and the
            // next renew then fails and stops the camera here.
            onEvent(.trouble("renew \(camera): \(error)"))
            return
        }
        held.stream.stop()
        running[camera] = nil
        onEvent(.released(camera: camera, reason: "lease lost (it expired and another worker may hold it)"))
    }
}
