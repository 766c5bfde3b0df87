import SightlineBus
import SightlineCore

/// Typed input records for node tests, and a record's published `data` (what subscribers see),
/// so tests can state expectations in the wire's terms.
enum TestRecords {
    static func labels(_ source: String = "cam", at time: Double, frame: Int = 0, _ pairs: [(String, Double)]) -> Record {
        let top = pairs.enumerated().map { ScoredLabel(name: $0.element.0, index: $0.offset, probability: $0.element.1) }
        return Record(.labels(Labels(frameIndex: frame, top: top)), sourceID: source, start: time, end: time)
    }

    static func ocr(_ source: String = "cam", at time: Double, frame: Int = 0, _ text: String) -> Record {
        let lines = text.split(separator: "\n").map { OnScreenText.Line(text: String($0), confidence: 1, box: []) }
        return Record(.ocr(OnScreenText(frameIndex: frame, lines: lines)), sourceID: source, start: time, end: time)
    }

    static func nsfw(_ source: String = "cam", at time: Double, frame: Int = 0, _ score: Double) -> Record {
        Record(.nsfw(NSFWScore(frameIndex: frame, score: score)), sourceID: source, start: time, end: time)
    }

    static func shot(_ index: Int, from start: Double, to end: Double, endedBy: Shot.Boundary, source: String = "cam") -> Record {
        Record(.shot(Shot(index: index, endedBy: endedBy)), sourceID: source, start: start, end: end)
    }

    static func embedding(_ source: String = "cam", at time: Double, frame: Int = 0, space: String, _ vector: [Float]) -> Record {
        Record(.embedding(Embedding(space: space, scope: .frame(index: frame), vector: vector)), sourceID: source, start: time, end: time)
    }
}

extension Record {
    /// The `data` object this record is published with.
    var data: JSONValue { .object(WireEncoding.data(value, delta: delta)) }
    var vector: [Float]? { value.vector }
}

extension StatusEvent {
    /// The `data` object this status is published with.
    var data: JSONValue { .object(WireEncoding.data(self)) }
}

extension EndOfStream {
    /// The `data` of the end_of_stream message this becomes (without the graph's counters).
    var data: JSONValue { StatusEvent(.endOfStream(self, SourceCounters()), sourceID: sourceID, wallClock: 0).data }
}
