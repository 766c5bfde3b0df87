import SightlineCore

/// Collects one source's typed records and turns them into index rows: per-frame rows as they
/// are, and per-shot rows that gather what was seen inside each shot (its caption, label and
/// concept words, on-screen text, how many people and faces at once, flags). A pure value: the
/// `index` node feeds it and decides when to write.
public struct IndexDocumentBuilder: Sendable {
    public private(set) var document: IndexDocument
    private var captions: [(start: Double, text: String, flagged: Bool)] = []
    /// Transcript segments (or whole chunks, when the server gave no segments).
    private var spoken: [(start: Double, end: Double, text: String)] = []
    private var openFlags: [String: IndexDocument.FlagRow] = [:]
    private var peopleAt: [Double: Int] = [:]
    private var facesAt: [Double: Int] = [:]
    private var lastTime: Double = 0

    public init(video: IndexDocument.Video) {
        document = IndexDocument(video: video)
    }

    public var video: IndexDocument.Video {
        get { document.video }
        set { document.video = newValue }
    }

    public mutating func add(_ record: Record) {
        lastTime = max(lastTime, record.end)
        let t = record.start
        switch record.value {
        case .shot(let shot):
            document.shots.append(.init(index: shot.index, start: record.start, end: record.end, endedBy: shot.endedBy.rawValue))
        case .caption(let caption):
            captions.append((record.start, caption.text, caption.flagged))
        case .labels(let labels):
            for (rank, label) in labels.top.enumerated() {
                // The top label carries the frame's concept; the rest are alternatives.
                document.labels.append(.init(time: t, name: label.name, probability: label.probability, origin: "frame",
                                             concept: rank == 0 ? labels.concept?.name : nil, conceptPath: rank == 0 ? labels.concept?.path ?? [] : [],
                                             colour: nil))
            }
            for region in labels.regions {
                guard let best = region.top.first else { continue }
                document.labels.append(.init(time: t, name: best.name, probability: best.probability, origin: region.origin.rawValue,
                                             concept: region.concept?.name, conceptPath: region.concept?.path ?? [], colour: region.colour))
            }
        case .ocr(let text):
            for line in text.lines {
                document.texts.append(.init(time: t, text: line.text, confidence: line.confidence))
            }
        case .people(let detections), .faces(let detections):
            let kind = if case .people = record.value { "person" } else { "face" }
            for object in detections.objects {
                document.detections.append(.init(time: t, kind: kind, box: object.box, score: object.score, frameWidth: detections.width,
                                                 frameHeight: detections.height, attributes: object.attributes))
            }
            if kind == "person" { peopleAt[t] = max(peopleAt[t] ?? 0, detections.objects.count) } else { facesAt[t] = max(facesAt[t] ?? 0, detections.objects.count) }
        case .trackEvent(let event) where event.phase == .exit:
            document.tracks.append(.init(trackID: event.id, label: event.label, start: event.firstSeen, end: event.lastSeen,
                                         movement: event.movement.rawValue, path: event.path))
        case .moderation(let event):
            switch event.phase {
            case .start:
                openFlags[event.category] = .init(category: event.category, start: record.start, end: record.end, peak: event.peak,
                                                  evidence: event.evidence, notes: event.notes)
            case .end:
                let notes = openFlags.removeValue(forKey: event.category)?.notes ?? []
                document.flags.append(.init(category: event.category, start: record.start, end: record.end, peak: event.peak,
                                            evidence: event.evidence, notes: notes + event.notes))
            }
        case .embedding(let embedding):
            switch embedding.scope {
            case .segment(let index, _):
                document.vectors.append(.init(space: embedding.space, shotIndex: index, start: record.start, end: record.end, vector: embedding.vector))
            case .frame:
                break  // frame vectors stay on the bus: the index searches by shot
            }
        case .stats, .phash, .regions, .nsfw, .tracks, .trackEvent:
            break
        case .transcript(let transcript):
            if transcript.segments.isEmpty {
                spoken.append((record.start, record.end, transcript.text))
            } else {
                spoken += transcript.segments.map { ($0.start, $0.end, $0.text) }
            }
        }
    }

    /// Records the thumbnail chosen for shot `index` (a path relative to the index folder).
    public mutating func setThumbnail(shot index: Int, path: String, time: Double) {
        guard let i = document.shots.lastIndex(where: { $0.index == index }) else { return }
        document.shots[i].thumbnail = path
        document.shots[i].thumbnailTime = time
    }

    /// For a live source written as it runs: returns the finished part, every shot that
    /// ended by `cutoff` and every row before it (with ended flags and exited tracks), and
    /// keeps the rest for later. Flags still open stay open.
    public mutating func drain(before cutoff: Double) -> IndexDocument {
        let all = finished()
        var out = IndexDocument(video: all.video)
        out.shots = all.shots.filter { $0.end <= cutoff + 1e-9 }
        out.labels = document.labels.filter { $0.time < cutoff }
        out.texts = document.texts.filter { $0.time < cutoff }
        out.detections = document.detections.filter { $0.time < cutoff }
        out.tracks = document.tracks
        out.flags = document.flags
        out.vectors = document.vectors.filter { $0.end <= cutoff + 1e-9 }
        out.video.duration = all.video.duration

        let drainedShots = Set(out.shots.map(\.index))
        document.shots.removeAll { drainedShots.contains($0.index) }
        document.labels.removeAll { $0.time < cutoff }
        document.texts.removeAll { $0.time < cutoff }
        document.detections.removeAll { $0.time < cutoff }
        document.tracks = []
        document.flags = []
        document.vectors.removeAll { $0.end <= cutoff + 1e-9 }
        let drainedStarts = out.shots.map(\.start)
        captions.removeAll { caption in drainedStarts.contains { abs($0 - caption.start) < 1e-6 } }
        peopleAt = peopleAt.filter { $0.key >= cutoff }
        facesAt = facesAt.filter { $0.key >= cutoff }
        return out
    }

    /// The document with every shot's summary filled in. Flags still open (a live source's
    /// flag that has not ended) are included up to the last record's time.
    public func finished() -> IndexDocument {
        var out = document
        out.video.duration = max(out.video.duration, lastTime)
        out.flags += openFlags.values.sorted { $0.start < $1.start }.map { var f = $0; f.end = max(f.end, f.evidence.last ?? f.end); return f }
        out.shots = out.shots.map { summarise($0, flags: out.flags) }
        return out
    }

    /// WordNet's top levels, true of everything and useless to search by.
    static let vagueConcepts: Set<String> = ["entity", "physical entity", "object", "whole", "abstraction", "matter", "unit", "causal agent"]

    /// Rows whose time falls in the shot: [start, end), or [start, end] for the last shot.
    private func inside(_ time: Double, _ shot: IndexDocument.ShotRow) -> Bool {
        time >= shot.start && (time < shot.end || (shot.endedBy == Shot.Boundary.end.rawValue && time <= shot.end))
    }

    private func summarise(_ shot: IndexDocument.ShotRow, flags: [IndexDocument.FlagRow]) -> IndexDocument.ShotRow {
        var s = shot
        // A caption covers exactly its shot: the captions node writes one per segment with the
        // segment's span, so the start matches.
        if let caption = captions.first(where: { abs($0.start - shot.start) < 1e-6 }) {
            s.caption = caption.text
            s.flagged = caption.flagged
        }
        var words: [String] = []
        var seen = Set<String>()
        func note(_ word: String) {
            let w = word.lowercased()
            if !w.isEmpty, seen.insert(w).inserted { words.append(w) }
        }
        // Labels that earned a place: top-1 of each frame and region, their concepts and paths
        // (so "vehicle" finds a "taxi"), and region colours ("red" finds a red-clad person).
        for label in document.labels where inside(label.time, shot) && label.probability >= 0.2 {
            note(label.name)
            if let concept = label.concept { note(concept) }
            for name in label.conceptPath where !Self.vagueConcepts.contains(name) { note(name) }
            if let colour = label.colour { note(colour) }
        }
        for detection in document.detections where inside(detection.time, shot) {
            note(detection.kind)
            for key in detection.attributes.keys.sorted() { if let value = detection.attributes[key] { note(value) } }
        }
        s.labelWords = words.joined(separator: "; ")
        var lines: [String] = []
        var seenLines = Set<String>()
        for text in document.texts where inside(text.time, shot) && seenLines.insert(text.text).inserted { lines.append(text.text) }
        s.text = lines.joined(separator: "\n")
        // Speech overlapping the shot; an instant segment counts where it falls.
        s.speech = spoken.filter { ($0.start < shot.end && $0.end > shot.start) || inside($0.start, shot) }
            .map(\.text).filter { !$0.isEmpty }.joined(separator: " ")
        s.people = peopleAt.filter { inside($0.key, shot) }.values.max() ?? 0
        s.faces = facesAt.filter { inside($0.key, shot) }.values.max() ?? 0
        // Overlap, not touch: a flag that ends where the next shot begins is not in it.
        if flags.contains(where: { inside($0.start, shot) || ($0.start < shot.start && $0.end > shot.start) }) { s.flagged = true }
        return s
    }
}
