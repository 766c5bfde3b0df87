import SightlineCore

/// The one place typed results and status become JSON: the `data` object of every message kind
/// (Docs/bus.md documents each), with the rounding the wire uses. Nodes pass full-precision
/// values to each other; only what is published is rounded, here.
public enum WireEncoding {
    /// `data` of a result message.
    public static func data(_ value: ResultValue, delta: DeltaMark? = nil) -> [String: JSONValue] {
        var data: [String: JSONValue]
        switch value {
        case .stats(let s):
            data = [
                "frame_index": int(s.frameIndex), "width": int(s.width), "height": int(s.height),
                "mean_luma": rounded(s.meanLuma, 1e2), "motion": s.motion.map { rounded($0, 1e5) } ?? .null,
            ]
        case .phash(let h):
            data = ["frame_index": int(h.frameIndex), "hash": .string(h.hex), "distance": h.distance.map(int) ?? .null]
        case .regions(let r):
            data = [
                "frame_index": int(r.frameIndex), "tile": int(r.tiles.tileSize), "columns": int(r.tiles.columns), "rows": int(r.tiles.rows),
                "changed_fraction": rounded(r.changedFraction, 1e4), "computed_fraction": rounded(r.computedFraction, 1e4),
                "skip": .bool(r.skip), "refresh": .bool(r.refresh), "reason": .string(r.reason), "mask": .string(r.tiles.hex),
            ]
        case .shot(let s):
            data = ["index": int(s.index), "ended_by": .string(s.endedBy.rawValue)]
        case .labels(let l):
            data = [
                "frame_index": int(l.frameIndex),
                "labels": .array(l.top.map { .object(["label": .string($0.name), "index": int($0.index), "p": rounded($0.probability, 1e5)]) }),
            ]
            if let concept = l.concept { data["concept"] = json(concept) }
            if !l.regions.isEmpty {
                data["regions"] = .array(l.regions.map { region in
                    var fields: [String: JSONValue] = [
                        "origin": .string(region.origin.rawValue), "box": box(region.box),
                        "labels": .array(region.top.map { .object(["label": .string($0.name), "index": int($0.index), "p": rounded($0.probability, 1e4)]) }),
                    ]
                    if let concept = region.concept { fields["concept"] = json(concept) }
                    if let colour = region.colour { fields["colour"] = .string(colour) }
                    return .object(fields)
                })
            }
        case .embedding(let e):
            data = ["space": .string(e.space), "dimension": int(e.vector.count)]
            switch e.scope {
            case .frame(let index):
                data["scope"] = "frame"
                data["frame_index"] = int(index)
            case .segment(let index, let frames):
                data["scope"] = "segment"
                data["segment_index"] = int(index)
                data["frames"] = int(frames)
            }
            if let evidence = e.evidence {
                data["labels"] = .array(evidence.labels.map { .string($0) })
                data["text"] = .string(evidence.text)
            }
        case .nsfw(let n):
            data = ["frame_index": int(n.frameIndex), "score": rounded(n.score, 1e6)]
        case .ocr(let o):
            data = [
                "frame_index": int(o.frameIndex), "text": .string(o.text),
                "lines": .array(o.lines.map { line in
                    var fields: [String: JSONValue] = [
                        "text": .string(line.text), "confidence": rounded(line.confidence, 1e4),
                        "box": .array(line.box.map { .array([.double($0.x.rounded()), .double($0.y.rounded())]) }),
                    ]
                    if line.kept == true { fields["kept"] = .bool(true) }
                    return .object(fields)
                }),
            ]
            if let detected = o.detected { data["detected"] = rounded(detected, 1e4) }
            if o.probed == true { data["probed"] = .bool(true) }
            if !o.dropped.isEmpty {
                data["dropped"] = .array(o.dropped.map {
                    .object(["text": .string($0.text), "confidence": rounded($0.confidence, 1e4), "reason": .string($0.reason)])
                })
            }
        case .caption(let c):
            data = [
                "caption": .string(c.text), "flagged": .bool(c.flagged), "masked_terms": .array(c.maskedTerms.map { .string($0) }),
                "repeated": .bool(c.repeated),
                "evidence": .object([
                    "labels": .array(c.labels.map { .object(["label": .string($0.name), "p": rounded($0.probability, 1e4)]) }),
                    "on_screen_text": .array(c.onScreenText.map { .string($0) }),
                    "more_text": int(c.moreText),
                ]),
                "phrases": .array(c.phrases.map { phrase in
                    .object(["kind": .string(phrase.kind.rawValue), "text": .string(phrase.text), "evidence": .array(phrase.evidence.map { .string($0) })])
                }),
            ]
        case .transcript(let t):
            data = [
                "text": .string(t.text), "flagged": .bool(!t.maskedTerms.isEmpty), "masked_terms": .array(t.maskedTerms.map { .string($0) }),
                "segments": .array(t.segments.map { .object(["start": rounded($0.start, 1e3), "end": rounded($0.end, 1e3), "text": .string($0.text)]) }),
                "language": t.language.map { .string($0) } ?? .null,
            ]
        case .moderation(let m):
            data = [
                "event": .string(m.phase.rawValue), "category": .string(m.category), "peak": .double(m.peak),
                "evidence": .array(m.evidence.map { .double($0) }),
            ]
            if !m.notes.isEmpty { data["notes"] = .array(m.notes.map { .string($0) }) }
        case .faces(let d):
            data = ["frame_index": int(d.frameIndex), "count": int(d.objects.count), "faces": .array(d.objects.map(object))]
        case .people(let d):
            data = ["frame_index": int(d.frameIndex), "count": int(d.objects.count), "people": .array(d.objects.map(object))]
        case .tracks(let t):
            data = [
                "frame_index": int(t.frameIndex), "label": .string(t.label), "count": int(t.visibleCount), "tracked": int(t.tracks.count),
                "tracks": .array(t.tracks.map { track in
                    .object([
                        "id": int(track.id), "box": box(track.box), "score": rounded(track.score, 1e4),
                        "velocity": .array([rounded(track.velocityX, 10), rounded(track.velocityY, 10)]),
                        "misses": int(track.misses), "first_seen": rounded(track.firstSeen, 1e3),
                    ])
                }),
            ]
        case .trackEvent(let e):
            data = [
                "event": .string(e.phase.rawValue), "id": int(e.id), "label": .string(e.label),
                "first_seen": rounded(e.firstSeen, 1e3), "last_seen": rounded(e.lastSeen, 1e3),
                "best_score": rounded(e.bestScore, 1e4), "movement": .string(e.movement.rawValue),
                "path": .array(e.path.map { .array([rounded($0.time, 1e3), rounded($0.x, 10), rounded($0.y, 10)]) }),
            ]
        }
        switch delta {
        case .computed(let changedInput, let workSaved)?:
            data["delta"] = .object(["changed_input": rounded(changedInput, 1e4), "work_saved": rounded(workSaved, 1e4)])
        case .reused?:
            data["reused"] = true
        case nil:
            break
        }
        return data
    }

    /// `data` of a status message, `event` included.
    public static func data(_ status: StatusEvent) -> [String: JSONValue] {
        var data: [String: JSONValue]
        switch status.detail {
        case .started(let opened):
            data = ["url": .string(opened.url), "container": .string(opened.container), "codec": .string(opened.codec),
                    "width": int(opened.width), "height": int(opened.height)]
            if let sha256 = opened.sha256 { data["sha256"] = .string(sha256) }
            if let file = opened.batchFile { data.merge(fields(file)) { _, file in file } }
        case .batchStarted(let plan):
            data = [
                "files": int(plan.entries.count), "to_process": int(plan.toProcess), "skipped": int(plan.entries.count - plan.toProcess),
                "plan": .array(plan.entries.map { entry in
                    .object(["source": .string(entry.source), "path": .string(entry.path), "skip": .bool(entry.skip),
                             "duration_s": entry.duration.map { rounded($0, 1e3) } ?? .null])
                }),
            ]
        case .reconnecting(let attempt, let delay, let reason):
            data = ["attempt": int(attempt), "delay_s": .double(delay), "reason": .string(reason)]
        case .gap(let after, let duration):
            data = ["after_seconds": .double(after), "duration_s": .double(duration)]
        case .drops(let counters):
            data = fields(counters)
        case .error(let failure):
            data = ["node": .string(failure.node), "message": .string(failure.message)]
            if failure.fatal { data["fatal"] = true }
            if let errors = failure.errorsSoFar { data["errors_so_far"] = int(errors) }
            if let path = failure.path { data["path"] = .string(path) }
        case .heartbeat(let beat):
            data = [
                "uptime_s": rounded(beat.uptime, 1e2), "queued": int(beat.queued),
                "sources": .object(beat.sources.mapValues { s in
                    .object(["frames_in": int(s.framesIn), "fps": rounded(s.fps, 1e2), "dropped_in_graph": int(s.droppedInGraph),
                             "dropped_at_sink": int(s.droppedAtSink)])
                }),
                "nodes": .object(beat.nodes.mapValues { n in
                    .object(["items": int(n.items), "errors": int(n.errors), "busy_ms_per_item": .double((n.busySecondsPerItem * 1e5).rounded() / 100)])
                }),
            ]
            if let p50 = beat.latencyP50, let p99 = beat.latencyP99 {
                data["latency_p50_ms"] = .double((p50 * 1e4).rounded() / 10)
                data["latency_p99_ms"] = .double((p99 * 1e4).rounded() / 10)
            }
        case .regions(let summary):
            data = ["frames": int(summary.frames), "skipped": int(summary.skipped),
                    "tiles_computed_fraction": rounded(summary.tilesComputedFraction, 1e4)]
        case .delta(let summary):
            data = ["node": .string(summary.node), "frames": int(summary.frames), "reused": int(summary.reused),
                    "work_saved": rounded(summary.workSaved, 1e4), "model_seconds": rounded(summary.modelSeconds, 1e3)]
        case .endOfStream(let eos, let counters):
            data = fields(eos)
            data.merge(fields(counters)) { own, _ in own }
        }
        data["event"] = .string(status.kind.rawValue)
        return data
    }

    /// A detection: its box [x, y, width, height] and keypoints {name: [x, y]} in image pixels
    /// (to a tenth), its score, and a person's face box.
    static func object(_ o: DetectedObject) -> JSONValue {
        var fields: [String: JSONValue] = ["box": box(o.box), "score": rounded(o.score, 1e4)]
        if !o.keypoints.isEmpty {
            fields["keypoints"] = .object(Dictionary(o.keypoints.map { ($0.name, .array([rounded($0.x, 10), rounded($0.y, 10)])) },
                                                     uniquingKeysWith: { a, _ in a }))
        }
        if let face = o.face { fields["face"] = box(face) }
        if !o.attributes.isEmpty { fields["attributes"] = .object(o.attributes.mapValues { .string($0) }) }
        return .object(fields)
    }

    static func json(_ c: Concept) -> JSONValue {
        .object(["name": .string(c.name), "wnid": .string(c.wnid), "mass": rounded(c.mass, 1e4), "path": .array(c.path.map { .string($0) })])
    }

    static func box(_ b: PixelBox) -> JSONValue { .array([rounded(b.x, 10), rounded(b.y, 10), rounded(b.width, 10), rounded(b.height, 10)]) }

    public static func json(_ provenance: Provenance) -> JSONValue {
        var fields: [String: JSONValue] = ["name": .string(provenance.name), "version": .string(provenance.version)]
        if let sha256 = provenance.sha256 { fields["sha256"] = .string(sha256) }
        return .object(fields)
    }

    static func fields(_ counters: SourceCounters) -> [String: JSONValue] {
        ["frames_in": int(counters.framesIn), "dropped_in_graph": int(counters.droppedInGraph), "dropped_at_sink": int(counters.droppedAtSink)]
    }

    static func fields(_ file: BatchFile) -> [String: JSONValue] {
        var data: [String: JSONValue] = ["path": .string(file.path), "file_index": int(file.index), "files_to_process": int(file.count)]
        if let size = file.size { data["size"] = .int(size) }
        if let mtime = file.mtime { data["mtime"] = .double(mtime) }
        return data
    }

    static func fields(_ eos: EndOfStream) -> [String: JSONValue] {
        var data: [String: JSONValue] = [:]
        if let d = eos.decoder {
            data = ["frames_decoded": int(d.framesDecoded), "frames_emitted": int(d.framesEmitted), "frames_sampled_out": int(d.framesSampledOut),
                    "corrupt_packets": int(d.corruptPackets), "corrupt_frames": int(d.corruptFrames), "read_errors": int(d.readErrors),
                    "reconnects": int(d.reconnects), "gap_seconds": .double(d.gapSeconds)]
            // `mode: nonref` under shot-aware sampling only (absent otherwise).
            if d.framesSkipped > 0 || d.holesRedecoded > 0 || d.holesNotRedecoded > 0 {
                data["frames_skipped"] = int(d.framesSkipped)
                data["holes_redecoded"] = int(d.holesRedecoded)
                data["frames_redecoded"] = int(d.framesRedecoded)
                data["holes_not_redecoded"] = int(d.holesNotRedecoded)
            }
            if let stopped = d.skippingStoppedAt { data["skipping_stopped_at"] = .double(stopped) }
            // `mode: keyframes` or `sampled` only (absent otherwise).
            if d.packetsSkipped > 0 || d.samplesDelayed > 0 {
                data["packets_skipped"] = int(d.packetsSkipped)
                data["samples_delayed"] = int(d.samplesDelayed)
            }
        }
        if let file = eos.batchFile { data.merge(fields(file)) { _, file in file } }
        if let sha256 = eos.sha256 { data["sha256"] = .string(sha256) }
        if let batch = eos.batch {
            data["files"] = int(batch.files)
            data["processed"] = int(batch.processed)
            data["failed"] = int(batch.failed)
            data["skipped"] = int(batch.skipped)
        }
        if let completed = eos.completed { data["completed"] = .bool(completed) }
        if let error = eos.error { data["error"] = .string(error) }
        if let frames = eos.frames { data["frames"] = int(frames) }
        return data
    }

    private static func int(_ value: Int) -> JSONValue { .int(Int64(value)) }

    /// `value` to the nearest 1/`scale` (1e4: four decimals).
    private static func rounded(_ value: Double, _ scale: Double) -> JSONValue { .double((value * scale).rounded() / scale) }
}
