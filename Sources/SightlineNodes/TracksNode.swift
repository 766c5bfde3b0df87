import Foundation
import SightlineCore
import SightlineGraph

/// How a track moved over its span, from its path: the larger of its sideways and up/down
/// travel when that exceeds `minTravel` of the frame's size, else coming closer or going away
/// when its box grew or shrank by half, else still.
public enum TrackMovement {
    public static func classify(_ path: [PixelPathPoint], width: Int, height: Int, minTravel: Double = 0.1) -> TrackEvent.Movement {
        guard let first = path.first, let last = path.last, path.count >= 2 else { return .unknown }
        let dx = (last.x - first.x) / Double(max(width, 1)), dy = (last.y - first.y) / Double(max(height, 1))
        if max(abs(dx), abs(dy)) >= minTravel {
            return abs(dx) >= abs(dy) ? (dx > 0 ? .right : .left) : (dy > 0 ? .down : .up)
        }
        let growth = last.area / max(first.area, 1)
        if growth >= 1.5 { return .approaching }
        if growth <= 1 / 1.5 { return .receding }
        return .still
    }
}

/// `tracks`: follows people and faces from frame to frame (SORT: a Kalman motion model, IoU
/// assignment, births and deaths; see `MultiObjectTracker`). Per frame and label it publishes
/// the confirmed tracks with stable ids and the count seen (`tracks`); per track, an `enter`
/// when it is confirmed and an `exit` with its time span, path and movement when it is lost or
/// the stream ends (`track_events`).
public final class TracksNode: NodeProcessor {
    private var trackers: [String: [String: MultiObjectTracker]] = [:]
    private var sizes: [String: (width: Int, height: Int)] = [:]
    private let configuration: MultiObjectTracker.Configuration

    public static let descriptor = NodeDescriptor(
        name: "tracks",
        description: "Stable ids for people and faces across frames (SORT), a per-frame count, and enter/exit events with spans and paths.",
        role: .transform, inputs: .records, outputs: .records,
        options: [
            OptionSpec("min_hits", .int, default: .int(2), min: 1, max: 100,
                       help: "detections in a row before a track is confirmed (a detection scoring confident_score or more confirms at once)"),
            OptionSpec("confident_score", .double, default: .double(0.8), min: 0, max: 1, help: "a detection this sure starts a confirmed track"),
            OptionSpec("max_misses", .int, default: .int(2), min: 0, max: 1000,
                       help: "sampled frames a track may go undetected (occlusion, a missed detection) before it exits"),
            OptionSpec("max_gap", .double, default: .double(5), min: 0, max: 3600, help: "seconds without a detection after which a track exits"),
            OptionSpec("min_iou", .double, default: .double(0.2), min: 0.01, max: 1, help: "overlap with the predicted box that counts as the same object"),
            OptionSpec("max_jump", .double, default: .double(1), min: 0, max: 10,
                       help: "for boxes that do not overlap (low frame rates): the largest centre distance, in box diagonals, that still matches"),
        ],
        contract: NodeContract(needs: [
            .init(anyOf: [.people, .faces], hint: "add a people or faces node before it: tracks follows what they detect"),
        ], produces: [.init(.tracks), .init(.trackEvents)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        var configuration = MultiObjectTracker.Configuration()
        configuration.minHits = options.int("min_hits") ?? 2
        configuration.confidentScore = options.double("confident_score") ?? 0.8
        configuration.maxMisses = options.int("max_misses") ?? 2
        configuration.maxGap = options.double("max_gap") ?? 5
        configuration.minIoU = options.double("min_iou") ?? 0.2
        configuration.maxJump = options.double("max_jump") ?? 1
        return .processor(TracksNode(configuration: configuration))
    }

    init(configuration: MultiObjectTracker.Configuration) {
        self.configuration = configuration
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .record(let record):
            emit(item)
            let label: String, detections: Detections
            switch record.value {
            case .people(let d): (label, detections) = ("person", d)
            case .faces(let d): (label, detections) = ("face", d)
            default: return
            }
            let source = record.sourceID
            sizes[source] = (detections.width, detections.height)
            var tracker = trackers[source]?[label] ?? MultiObjectTracker(configuration: configuration)
            let update = tracker.update(detections.objects.map { TrackedDetection(label: label, box: $0.box, score: $0.score) }, at: record.start)
            trackers[source, default: [:]][label] = tracker
            let provenance = [Provenance(name: "sort-tracker", version: "1")] + record.provenance
            for track in update.entered {
                emit(.record(event(.enter, track, record: record, provenance: provenance)))
            }
            for track in update.exited {
                emit(.record(event(.exit, track, record: record, provenance: provenance)))
            }
            let snapshot = TrackSnapshot(frameIndex: detections.frameIndex, label: label, width: detections.width, height: detections.height,
                                         tracks: update.tracks.map { track in
                                             TrackedObject(id: track.id, box: track.box.clipped(width: detections.width, height: detections.height),
                                                           score: track.score, velocityX: track.velocity.x, velocityY: track.velocity.y,
                                                           misses: track.misses, firstSeen: track.firstSeen)
                                         })
            var out = Record(.tracks(snapshot), sourceID: source, start: record.start, end: record.end,
                             ingestWallClock: record.ingestWallClock, provenance: provenance)
            out.delta = nil
            emit(.record(out))
        case .endOfStream(let eos):
            // Every open track has exited at the end of its source.
            for (label, var tracker) in (trackers[eos.sourceID] ?? [:]).sorted(by: { $0.key < $1.key }) {
                for track in tracker.finish() {
                    let size = sizes[eos.sourceID] ?? (0, 0)
                    let value = Self.event(.exit, track, label: label, width: size.width, height: size.height)
                    emit(.record(Record(.trackEvent(value), sourceID: eos.sourceID, start: track.firstSeen, end: track.lastSeen,
                                        ingestWallClock: nil, provenance: [Provenance(name: "sort-tracker", version: "1")])))
                }
            }
            trackers[eos.sourceID] = nil
            sizes[eos.sourceID] = nil
            emit(item)
        case .frame, .status:
            emit(item)
        }
    }

    private func event(_ phase: TrackEvent.Phase, _ track: MultiObjectTracker.Track, record: Record, provenance: [Provenance]) -> Record {
        let size = sizes[record.sourceID] ?? (0, 0)
        let value = Self.event(phase, track, label: track.label, width: size.width, height: size.height)
        // An enter is about the moment of confirmation; an exit spans the track's whole life.
        let (start, end) = phase == .enter ? (record.start, record.end) : (track.firstSeen, track.lastSeen)
        return Record(.trackEvent(value), sourceID: record.sourceID, start: start, end: end, ingestWallClock: record.ingestWallClock,
                      provenance: provenance)
    }

    static func event(_ phase: TrackEvent.Phase, _ track: MultiObjectTracker.Track, label: String, width: Int, height: Int) -> TrackEvent {
        let path = track.path.map { PixelPathPoint(time: $0.time, x: $0.x, y: $0.y, area: $0.area) }
        let movement = phase == .enter ? TrackEvent.Movement.unknown : TrackMovement.classify(path, width: width, height: height)
        return TrackEvent(phase: phase, id: track.id, label: label, firstSeen: track.firstSeen, lastSeen: track.lastSeen, path: path,
                          bestScore: track.bestScore, movement: movement, width: width, height: height)
    }
}
