/// Where a result came from: a model (or algorithm) by name, version and content hash.
public struct Provenance: Sendable, Codable, Equatable, Hashable {
    public var name: String
    public var version: String
    public var sha256: String?

    public init(name: String, version: String, sha256: String? = nil) {
        self.name = name
        self.version = version
        self.sha256 = sha256
    }
}

/// The kinds of result nodes exchange. Each is also the first part of its bus topic
/// (`labels/cam1/`), and node contracts name them (what a node needs and produces).
public enum ResultKind: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case stats, phash, regions, shots, labels, embeddings, nsfw, ocr, captions, moderation, faces, people, tracks
    case trackEvents = "track_events"
    case transcripts

    public var description: String { rawValue }
}

/// One result, typed. Nodes read these directly; JSON is made only at the sinks, by the bus's
/// encoder (SightlineBus `WireEncoding`), which also holds the rounding the wire uses.
public enum ResultValue: Sendable, Codable, Equatable {
    case stats(FrameStatistics)
    case phash(PerceptualHash)
    case regions(ChangedRegions)
    case shot(Shot)
    case labels(Labels)
    case embedding(Embedding)
    case nsfw(NSFWScore)
    case ocr(OnScreenText)
    case caption(Caption)
    case moderation(ModerationEvent)
    case faces(Detections)
    case people(Detections)
    case tracks(TrackSnapshot)
    case trackEvent(TrackEvent)
    case transcript(Transcript)

    public var kind: ResultKind {
        switch self {
        case .stats: .stats
        case .phash: .phash
        case .regions: .regions
        case .shot: .shots
        case .labels: .labels
        case .embedding: .embeddings
        case .nsfw: .nsfw
        case .ocr: .ocr
        case .caption: .captions
        case .moderation: .moderation
        case .faces: .faces
        case .people: .people
        case .tracks: .tracks
        case .trackEvent: .trackEvents
        case .transcript: .transcripts
        }
    }

    /// The vector published as the message's binary payload, if the value carries one.
    public var vector: [Float]? {
        switch self {
        case .stats(let s): s.histogram
        case .embedding(let e): e.vector
        default: nil
        }
    }

    /// The frame (decode index) a per-frame result is about; nil for shots, captions, flags and
    /// segment embeddings.
    public var frameIndex: Int? {
        switch self {
        case .stats(let v): v.frameIndex
        case .phash(let v): v.frameIndex
        case .regions(let v): v.frameIndex
        case .labels(let v): v.frameIndex
        case .nsfw(let v): v.frameIndex
        case .ocr(let v): v.frameIndex
        case .embedding(let v): if case .frame(let index) = v.scope { index } else { nil }
        case .faces(let v), .people(let v): v.frameIndex
        case .tracks(let v): v.frameIndex
        case .shot, .caption, .moderation, .trackEvent, .transcript: nil
        }
    }

    /// The same result standing for another frame of its source (delta inference reuses a
    /// frame's results for the next ones when nothing changed); values not tied to one frame
    /// stay as they are.
    public func reused(forFrame index: Int) -> ResultValue {
        switch self {
        case .stats(var v): v.frameIndex = index; return .stats(v)
        case .phash(var v): v.frameIndex = index; return .phash(v)
        case .regions(var v): v.frameIndex = index; return .regions(v)
        case .labels(var v): v.frameIndex = index; return .labels(v)
        case .nsfw(var v): v.frameIndex = index; return .nsfw(v)
        case .ocr(var v): v.frameIndex = index; return .ocr(v)
        case .embedding(var v):
            if case .frame = v.scope { v.scope = .frame(index: index) }
            return .embedding(v)
        case .faces(var v): v.frameIndex = index; return .faces(v)
        case .people(var v): v.frameIndex = index; return .people(v)
        case .tracks(var v): v.frameIndex = index; return .tracks(v)
        case .shot, .caption, .moderation, .trackEvent, .transcript: return self
        }
    }
}

/// How delta inference obtained a model result (see the `regions` node).
public enum DeltaMark: Sendable, Codable, Equatable {
    /// Recomputed where the input changed: the fraction of input positions that changed and of
    /// the convolutions' multiply-accumulates that were not needed.
    case computed(changedInput: Double, workSaved: Double)
    /// Nothing changed: the previous frame's result, standing for this frame.
    case reused
}

/// A result a node produced about a span of one source's media time; sinks publish it.
public struct Record: Sendable, Codable, Equatable {
    public var value: ResultValue
    public var sourceID: String
    /// Media-time span in seconds on the source's output timeline.
    public var start: Double
    public var end: Double
    /// Ingest wall-clock time of the newest frame behind this record, for latency.
    public var ingestWallClock: Double?
    public var provenance: [Provenance]
    public var delta: DeltaMark?

    public init(_ value: ResultValue, sourceID: String, start: Double, end: Double, ingestWallClock: Double? = nil,
                provenance: [Provenance] = [], delta: DeltaMark? = nil) {
        self.value = value
        self.sourceID = sourceID
        self.start = start
        self.end = end
        self.ingestWallClock = ingestWallClock
        self.provenance = provenance
        self.delta = delta
    }

    /// A result about one frame: its span is the frame's time.
    public init(_ value: ResultValue, frame: Frame, provenance: [Provenance] = []) {
        self.init(value, sourceID: frame.sourceID, start: frame.seconds, end: frame.seconds,
                  ingestWallClock: frame.ingestWallClock, provenance: provenance)
    }

    public var kind: ResultKind { value.kind }
}

/// Source ids. A batch source names each of its files `NODE/FILE`, so topics read
/// `KIND/NODE/FILE/`, a subscriber can take a whole batch with `KIND/NODE/`, and each file
/// is a source of its own (its own end-of-stream, its own per-source state in every node).
public enum SourceName {
    /// The node a source id belongs to: the part before the first "/".
    public static func root(_ id: String) -> String {
        guard let slash = id.firstIndex(of: "/") else { return id }
        return String(id[..<slash])
    }
}

// MARK: - The result values

/// `stats`: mean luma and motion energy of one sampled frame.
public struct FrameStatistics: Sendable, Codable, Equatable {
    public var frameIndex: Int
    public var width: Int
    public var height: Int
    /// 0…255 (BT.601).
    public var meanLuma: Double
    /// 0…1 against the previous sampled frame of the source; nil for the first.
    public var motion: Double?
    /// Luma histogram (fractions summing to 1), when asked for.
    public var histogram: [Float]?

    public init(frameIndex: Int, width: Int, height: Int, meanLuma: Double, motion: Double?, histogram: [Float]? = nil) {
        self.frameIndex = frameIndex
        self.width = width
        self.height = height
        self.meanLuma = meanLuma
        self.motion = motion
        self.histogram = histogram
    }
}

/// `phash`: a 64-bit DCT perceptual hash and the Hamming distance to the previous frame's.
public struct PerceptualHash: Sendable, Codable, Equatable {
    public var frameIndex: Int
    public var hash: UInt64
    public var distance: Int?

    public init(frameIndex: Int, hash: UInt64, distance: Int?) {
        self.frameIndex = frameIndex
        self.hash = hash
        self.distance = distance
    }

    /// 16 hex digits, as published.
    public var hex: String {
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// `regions`: which tiles of a sampled frame changed since the picture the models last computed.
public struct ChangedRegions: Sendable, Codable, Equatable {
    public var frameIndex: Int
    public var tiles: TileMask
    /// Fraction of tiles above the selector's threshold (before the skip / refresh decision).
    public var changedFraction: Double
    /// Nothing worth computing: model nodes reuse their previous results.
    public var skip: Bool
    /// Everything is recomputed (first frame, periodic refresh, shot change, most tiles changed).
    public var refresh: Bool
    public var reason: String

    public init(frameIndex: Int, tiles: TileMask, changedFraction: Double, skip: Bool, refresh: Bool, reason: String) {
        self.frameIndex = frameIndex
        self.tiles = tiles
        self.changedFraction = changedFraction
        self.skip = skip
        self.refresh = refresh
        self.reason = reason
    }

    /// The fraction of tiles the models compute (0 when the frame is skipped).
    public var computedFraction: Double { skip ? 0 : tiles.fraction }
}

/// `shots`: one finished shot (or fixed window); the record's span covers it.
public struct Shot: Sendable, Codable, Equatable {
    public enum Boundary: String, Sendable, Codable {
        case cut, fade, window
        /// The source ended: the last segment, which includes its end time.
        case end
        /// A live source lost its data: the segment ends at the last frame before the outage.
        case gap
    }

    public var index: Int
    public var endedBy: Boundary

    public init(index: Int, endedBy: Boundary) {
        self.index = index
        self.endedBy = endedBy
    }

    /// A segment ended by a cut runs up to, not including, the cut frame; the last one
    /// includes its end.
    public var includesEnd: Bool { endedBy == .end }
}

/// One class with its probability.
public struct ScoredLabel: Sendable, Codable, Equatable {
    public var name: String
    /// Class index in the model's label list (ImageNet-1k for `labels`).
    public var index: Int
    public var probability: Double

    public init(name: String, index: Int, probability: Double) {
        self.name = name
        self.index = index
        self.probability = probability
    }
}

/// `labels`: the top classes of one frame, most probable first.
public struct Labels: Sendable, Codable, Equatable {
    public var frameIndex: Int
    /// The whole frame's (centre crop's) most probable classes.
    public var top: [ScoredLabel]
    /// The whole frame's hedged concept (see `Concept`), when one clears the bar.
    public var concept: Concept?
    /// Labels of crops: around people, around what moved, the sides of a wide frame.
    public var regions: [RegionLabels]

    public init(frameIndex: Int, top: [ScoredLabel], concept: Concept? = nil, regions: [RegionLabels] = []) {
        self.frameIndex = frameIndex
        self.top = top
        self.concept = concept
        self.regions = regions
    }
}

/// A concept from the WordNet hierarchy over a classifier's classes, named with the confidence
/// it earned: the most specific one whose summed probability ("mass") clears a bar.
public struct Concept: Sendable, Codable, Equatable {
    public var name: String
    public var wnid: String
    public var mass: Double
    /// Names from the root ("entity") down to this concept.
    public var path: [String]
    /// A class of the classifier itself (not a concept above several classes).
    public var isClass: Bool

    public init(name: String, wnid: String, mass: Double, path: [String], isClass: Bool) {
        self.name = name
        self.wnid = wnid
        self.mass = mass
        self.path = path
        self.isClass = isClass
    }
}

/// What a classifier saw in one crop of a frame, and where.
public struct RegionLabels: Sendable, Codable, Equatable {
    /// Why this crop was taken.
    public enum Origin: String, Sendable, Codable {
        /// Around a detected person (with surroundings: what they ride or hold).
        case person
        /// Around tiles that changed since the previous sampled frame.
        case motion
        /// The left or right square of a wide frame (the centre crop misses them).
        case left, right
    }

    public var origin: Origin
    /// The crop in frame pixels.
    public var box: PixelBox
    public var top: [ScoredLabel]
    public var concept: Concept?
    /// The crop's dominant colour name, when one covers enough of it.
    public var colour: String?

    public init(origin: Origin, box: PixelBox, top: [ScoredLabel], concept: Concept?, colour: String? = nil) {
        self.origin = origin
        self.box = box
        self.top = top
        self.concept = concept
        self.colour = colour
    }
}

/// `nsfw`: P(NSFW) of one frame.
public struct NSFWScore: Sendable, Codable, Equatable {
    public var frameIndex: Int
    public var score: Double

    public init(frameIndex: Int, score: Double) {
        self.frameIndex = frameIndex
        self.score = score
    }
}

/// A point in image pixels.
public struct PixelPoint: Sendable, Codable, Equatable {
    public var x: Double
    public var y: Double

    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// `ocr`: the lines of text read in one frame.
public struct OnScreenText: Sendable, Codable, Equatable {
    public struct Line: Sendable, Codable, Equatable {
        public var text: String
        public var confidence: Double
        /// Four corners, clockwise from top-left, in image pixels.
        public var box: [PixelPoint]
        /// The reading was carried over from the source's previous read frame, where the same
        /// box held the same pixels (nil: read on this frame).
        public var kept: Bool?

        public init(text: String, confidence: Double, box: [PixelPoint], kept: Bool? = nil) {
            self.text = text
            self.confidence = confidence
            self.box = box
            self.kept = kept
        }
    }

    /// A reading the plausibility filter dropped, and why (it never reaches captions or flags).
    public struct Dropped: Sendable, Codable, Equatable {
        public var text: String
        public var confidence: Double
        public var reason: String

        public init(text: String, confidence: Double, reason: String) {
            self.text = text
            self.confidence = confidence
            self.reason = reason
        }
    }

    public var frameIndex: Int
    /// Plausible text only.
    public var lines: [Line]
    public var dropped: [Dropped]
    /// The frame's size (0 when unknown), for how large and central a line is.
    public var width: Int
    public var height: Int
    /// The share of the text detector's input that ran on this frame, when it ran only around
    /// the tiles that changed (nil: the whole frame).
    public var detected: Double?
    /// True when only the reduced-size probe looked at this frame and found no text, so the
    /// full-size detector did not run (nil: it ran).
    public var probed: Bool?

    public init(frameIndex: Int, lines: [Line], dropped: [Dropped] = [], width: Int = 0, height: Int = 0, detected: Double? = nil, probed: Bool? = nil) {
        self.frameIndex = frameIndex
        self.lines = lines
        self.dropped = dropped
        self.width = width
        self.height = height
        self.detected = detected
        self.probed = probed
    }

    /// Every line, one per line.
    public var text: String { lines.map(\.text).joined(separator: "\n") }
}

/// `embeddings`: a unit vector in a named space, for one frame or pooled over a segment.
public struct Embedding: Sendable, Codable, Equatable {
    public enum Scope: Sendable, Codable, Equatable {
        case frame(index: Int)
        /// The mean over shot `index` of `frames` frame vectors, normalised again.
        case segment(index: Int, frames: Int)
    }

    /// What went into a text-space (ConSE) vector: the label names and the on-screen text.
    public struct TextEvidence: Sendable, Codable, Equatable {
        public var labels: [String]
        public var text: String

        public init(labels: [String], text: String) {
            self.labels = labels
            self.text = text
        }
    }

    public var space: String
    public var scope: Scope
    public var vector: [Float]
    public var evidence: TextEvidence?

    public init(space: String, scope: Scope, vector: [Float], evidence: TextEvidence? = nil) {
        self.space = space
        self.scope = scope
        self.vector = vector
        self.evidence = evidence
    }
}

/// One phrase of a caption and what supports it.
public struct CaptionPhrase: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case people, faces, objects, text, camera, shot
        /// What was said (from a `transcribe` node's transcripts).
        case speech
        /// Nothing clear enough to name.
        case unclear
    }

    public var kind: Kind
    public var text: String
    /// What supports it, readable: "person track 3 0.0–4.0 s, left".
    public var evidence: [String]

    public init(kind: Kind, text: String, evidence: [String] = []) {
        self.kind = kind
        self.text = text
        self.evidence = evidence
    }
}

/// `transcripts`: what was said in one chunk of a source's audio, from a speech model server.
/// The record's span is the chunk's; segments carry their own times on the source's clock.
public struct Transcript: Sendable, Codable, Equatable {
    public struct Segment: Sendable, Codable, Equatable {
        public var start: Double
        public var end: Double
        public var text: String

        public init(start: Double, end: Double, text: String) {
            self.start = start
            self.end = end
            self.text = text
        }
    }

    /// The chunk's text, with words on the moderation policy's list masked.
    public var text: String
    public var maskedTerms: [String]
    public var segments: [Segment]
    /// The language the server named, if it did.
    public var language: String?

    public init(text: String, maskedTerms: [String] = [], segments: [Segment] = [], language: String? = nil) {
        self.text = text
        self.maskedTerms = maskedTerms
        self.segments = segments
        self.language = language
    }
}

/// `captions`: a caption for one segment and the evidence behind it.
public struct Caption: Sendable, Codable, Equatable {
    /// The caption with words on the moderation policy's list masked.
    public var text: String
    /// The policy's words that were masked (empty: not flagged).
    public var maskedTerms: [String]
    /// The segment shows what the one before it showed.
    public var repeated: Bool
    /// Labels averaged over the segment, most probable first.
    public var labels: [(name: String, probability: Double)]
    /// The lines of on-screen text the caption quotes (each text track's best reading), masked
    /// like the caption.
    public var onScreenText: [String]
    /// Text tracks read in the segment but not quoted.
    public var moreText: Int
    /// The caption's phrases in order, each with its evidence.
    public var phrases: [CaptionPhrase]

    public init(text: String, maskedTerms: [String], repeated: Bool, labels: [(name: String, probability: Double)], onScreenText: [String],
                moreText: Int = 0, phrases: [CaptionPhrase] = []) {
        self.text = text
        self.maskedTerms = maskedTerms
        self.repeated = repeated
        self.labels = labels
        self.onScreenText = onScreenText
        self.moreText = moreText
        self.phrases = phrases
    }

    public var flagged: Bool { !maskedTerms.isEmpty }

    // Written out because `labels` holds tuples, which Codable cannot synthesize.
    private enum CodingKeys: String, CodingKey { case text, maskedTerms, repeated, labelNames, labelProbabilities, onScreenText, moreText, phrases }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let names = try c.decode([String].self, forKey: .labelNames)
        let probabilities = try c.decode([Double].self, forKey: .labelProbabilities)
        guard names.count == probabilities.count else {
            throw DecodingError.dataCorruptedError(forKey: .labelProbabilities, in: c, debugDescription: "one probability per label name")
        }
        self.init(text: try c.decode(String.self, forKey: .text), maskedTerms: try c.decode([String].self, forKey: .maskedTerms),
                  repeated: try c.decode(Bool.self, forKey: .repeated), labels: Array(zip(names, probabilities)).map { (name: $0.0, probability: $0.1) },
                  onScreenText: try c.decode([String].self, forKey: .onScreenText), moreText: try c.decode(Int.self, forKey: .moreText),
                  phrases: try c.decode([CaptionPhrase].self, forKey: .phrases))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(text, forKey: .text)
        try c.encode(maskedTerms, forKey: .maskedTerms)
        try c.encode(repeated, forKey: .repeated)
        try c.encode(labels.map(\.name), forKey: .labelNames)
        try c.encode(labels.map(\.probability), forKey: .labelProbabilities)
        try c.encode(onScreenText, forKey: .onScreenText)
        try c.encode(moreText, forKey: .moreText)
        try c.encode(phrases, forKey: .phrases)
    }

    public static func == (a: Caption, b: Caption) -> Bool {
        a.text == b.text && a.maskedTerms == b.maskedTerms && a.repeated == b.repeated && a.onScreenText == b.onScreenText
            && a.labels.map(\.name) == b.labels.map(\.name) && a.labels.map(\.probability) == b.labels.map(\.probability)
            && a.moreText == b.moreText && a.phrases == b.phrases
    }
}

/// `moderation`: a category's flag started or ended.
public struct ModerationEvent: Sendable, Codable, Equatable {
    public enum Phase: String, Sendable, Codable {
        case start = "flag_start"
        case end = "flag_end"
    }

    public var phase: Phase
    public var category: String
    /// The highest score seen while flagged.
    public var peak: Double
    /// Media times (up to 16) of the samples at or above the enter threshold.
    public var evidence: [Double]
    /// What the reader should know about how it was decided (a requirement not applied).
    public var notes: [String]

    public init(phase: Phase, category: String, peak: Double, evidence: [Double], notes: [String] = []) {
        self.phase = phase
        self.category = category
        self.peak = peak
        self.evidence = evidence
        self.notes = notes
    }
}

/// A box in image pixels: its top-left corner and size.
public struct PixelBox: Sendable, Codable, Equatable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double

    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    public var centre: PixelPoint { PixelPoint(x: x + width / 2, y: y + height / 2) }
    public var area: Double { max(width, 0) * max(height, 0) }

    /// Intersection over union (0 when either box is empty).
    public func iou(_ other: PixelBox) -> Double {
        let x0 = max(x, other.x), y0 = max(y, other.y)
        let x1 = min(x + width, other.x + other.width), y1 = min(y + height, other.y + other.height)
        let intersection = max(0, x1 - x0) * max(0, y1 - y0)
        let union = area + other.area - intersection
        return union > 0 ? intersection / union : 0
    }

    /// The part of this box inside a `width` × `height` image.
    public func clipped(width w: Int, height h: Int) -> PixelBox {
        let x0 = min(max(x, 0), Double(w)), y0 = min(max(y, 0), Double(h))
        let x1 = min(max(x + width, 0), Double(w)), y1 = min(max(y + height, 0), Double(h))
        return PixelBox(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
    }
}

/// A named point of a detection (an eye, the hip centre), in image pixels.
public struct Keypoint: Sendable, Codable, Equatable {
    public var name: String
    public var x: Double
    public var y: Double

    public init(name: String, x: Double, y: Double) {
        self.name = name
        self.x = x
        self.y = y
    }
}

/// One thing a detector found.
public struct DetectedObject: Sendable, Codable, Equatable {
    public var box: PixelBox
    public var score: Double
    public var keypoints: [Keypoint]
    /// For a person: the face the person detector located (its own box is the body's).
    public var face: PixelBox?
    /// Plain attributes people search by, e.g. "upper_colour": "red", "lower_colour": "blue".
    public var attributes: [String: String]

    public init(box: PixelBox, score: Double, keypoints: [Keypoint] = [], face: PixelBox? = nil, attributes: [String: String] = [:]) {
        self.box = box
        self.score = score
        self.keypoints = keypoints
        self.face = face
        self.attributes = attributes
    }
}

/// `faces` / `people`: what a detector found in one frame (possibly nothing).
public struct Detections: Sendable, Codable, Equatable {
    public var frameIndex: Int
    /// The frame's size, for boxes read without the frame.
    public var width: Int
    public var height: Int
    public var objects: [DetectedObject]

    public init(frameIndex: Int, width: Int, height: Int, objects: [DetectedObject]) {
        self.frameIndex = frameIndex
        self.width = width
        self.height = height
        self.objects = objects
    }
}

/// A tracked object as one frame sees it.
public struct TrackedObject: Sendable, Codable, Equatable {
    public var id: Int
    public var box: PixelBox
    public var score: Double
    /// Centre velocity in pixels per second (the motion model's estimate).
    public var velocityX: Double
    public var velocityY: Double
    /// Frames in a row it was not detected (0: detected in this frame; more: predicted).
    public var misses: Int
    public var firstSeen: Double

    public init(id: Int, box: PixelBox, score: Double, velocityX: Double, velocityY: Double, misses: Int, firstSeen: Double) {
        self.id = id
        self.box = box
        self.score = score
        self.velocityX = velocityX
        self.velocityY = velocityY
        self.misses = misses
        self.firstSeen = firstSeen
    }
}

/// `tracks`: the confirmed tracks of one label (person, face) after a frame.
public struct TrackSnapshot: Sendable, Codable, Equatable {
    public var frameIndex: Int
    public var label: String
    public var width: Int
    public var height: Int
    public var tracks: [TrackedObject]

    public init(frameIndex: Int, label: String, width: Int, height: Int, tracks: [TrackedObject]) {
        self.frameIndex = frameIndex
        self.label = label
        self.width = width
        self.height = height
        self.tracks = tracks
    }

    /// Tracks detected in this frame (the per-frame count; coasting tracks are not counted).
    public var visibleCount: Int { tracks.filter { $0.misses == 0 }.count }
}

/// `track_events`: a track entered (was confirmed) or exited (was lost or the stream ended).
public struct TrackEvent: Sendable, Codable, Equatable {
    public enum Phase: String, Sendable, Codable {
        case enter, exit
    }

    /// Where it went over its span, in the frame's terms.
    public enum Movement: String, Sendable, Codable {
        case left, right, up, down, approaching, receding, still
        /// Not enough of a path yet (an enter event).
        case unknown
    }

    public var phase: Phase
    public var id: Int
    public var label: String
    public var firstSeen: Double
    public var lastSeen: Double
    /// Centres with their media time (pixels), oldest first; thinned evenly on long tracks.
    public var path: [PixelPathPoint]
    public var bestScore: Double
    public var movement: Movement
    public var width: Int
    public var height: Int

    public init(phase: Phase, id: Int, label: String, firstSeen: Double, lastSeen: Double, path: [PixelPathPoint], bestScore: Double,
                movement: Movement, width: Int, height: Int) {
        self.phase = phase
        self.id = id
        self.label = label
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.path = path
        self.bestScore = bestScore
        self.movement = movement
        self.width = width
        self.height = height
    }
}

public struct PixelPathPoint: Sendable, Codable, Equatable {
    public var time: Double
    public var x: Double
    public var y: Double
    /// The box's area there (pixels²): growing means coming closer.
    public var area: Double

    public init(time: Double, x: Double, y: Double, area: Double) {
        self.time = time
        self.x = x
        self.y = y
        self.area = area
    }
}
