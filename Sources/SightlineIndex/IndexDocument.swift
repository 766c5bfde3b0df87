import SightlineCore

/// Everything the index keeps about one video (a batch file) or one stretch of a live source,
/// in rows ready to write. Built from typed records by `IndexDocumentBuilder`; written in one
/// transaction by `IndexStore`.
public struct IndexDocument: Sendable, Equatable {
    public struct Video: Sendable, Equatable {
        /// The source id (`files/clip.mp4`, `cam1`): the key a re-run replaces by.
        public var source: String
        /// Where the media came from (a path or a URL).
        public var location: String
        public var sha256: String?
        public var duration: Double
        public var live: Bool
        public var pipelineHash: String?

        public init(source: String, location: String, sha256: String?, duration: Double, live: Bool, pipelineHash: String?) {
            self.source = source
            self.location = location
            self.sha256 = sha256
            self.duration = duration
            self.live = live
            self.pipelineHash = pipelineHash
        }
    }

    public struct ShotRow: Sendable, Equatable {
        public var index: Int
        public var start: Double
        public var end: Double
        public var endedBy: String
        public var caption: String
        /// Label, concept and colour words seen in the shot, for full-text search.
        public var labelWords: String
        /// Distinct lines of on-screen text read in the shot.
        public var text: String
        /// What was said during the shot (transcript segments that overlap it), for search.
        public var speech: String = ""
        /// Most people (faces) visible at once.
        public var people: Int
        public var faces: Int
        /// The shot overlaps a moderation flag or its caption had masked words.
        public var flagged: Bool
        /// The thumbnail's file name, relative to the index folder.
        public var thumbnail: String?
        /// The media time the thumbnail shows.
        public var thumbnailTime: Double?

        public init(index: Int, start: Double, end: Double, endedBy: String, caption: String = "", labelWords: String = "", text: String = "",
                    people: Int = 0, faces: Int = 0, flagged: Bool = false, thumbnail: String? = nil, thumbnailTime: Double? = nil) {
            self.index = index
            self.start = start
            self.end = end
            self.endedBy = endedBy
            self.caption = caption
            self.labelWords = labelWords
            self.text = text
            self.people = people
            self.faces = faces
            self.flagged = flagged
            self.thumbnail = thumbnail
            self.thumbnailTime = thumbnailTime
        }
    }

    public struct LabelRow: Sendable, Equatable {
        public var time: Double
        public var name: String
        public var probability: Double
        /// `frame`, or the crop it came from (`person`, `motion`, `left`, `right`).
        public var origin: String
        /// The hedged WordNet concept and its path from the root, when there was one.
        public var concept: String?
        public var conceptPath: [String]
        public var colour: String?
    }

    public struct TextRow: Sendable, Equatable {
        public var time: Double
        public var text: String
        public var confidence: Double
    }

    public struct DetectionRow: Sendable, Equatable {
        public var time: Double
        /// `person` or `face`.
        public var kind: String
        public var box: PixelBox
        public var score: Double
        public var frameWidth: Int
        public var frameHeight: Int
        public var attributes: [String: String]
    }

    public struct TrackRow: Sendable, Equatable {
        public var trackID: Int
        public var label: String
        public var start: Double
        public var end: Double
        public var movement: String
        public var path: [PixelPathPoint]
    }

    public struct FlagRow: Sendable, Equatable {
        public var category: String
        public var start: Double
        public var end: Double
        public var peak: Double
        public var evidence: [Double]
        public var notes: [String]
    }

    public struct VectorRow: Sendable, Equatable {
        public var space: String
        /// The shot it pools (segment vectors); nil for a frame's vector.
        public var shotIndex: Int?
        public var start: Double
        public var end: Double
        public var vector: [Float]

        public init(space: String, shotIndex: Int?, start: Double, end: Double, vector: [Float]) {
            self.space = space
            self.shotIndex = shotIndex
            self.start = start
            self.end = end
            self.vector = vector
        }
    }

    public var video: Video
    public var shots: [ShotRow] = []
    public var labels: [LabelRow] = []
    public var texts: [TextRow] = []
    public var detections: [DetectionRow] = []
    public var tracks: [TrackRow] = []
    public var flags: [FlagRow] = []
    public var vectors: [VectorRow] = []

    public init(video: Video) {
        self.video = video
    }

    public var isEmpty: Bool {
        shots.isEmpty && labels.isEmpty && texts.isEmpty && detections.isEmpty && tracks.isEmpty && flags.isEmpty && vectors.isEmpty
    }
}
