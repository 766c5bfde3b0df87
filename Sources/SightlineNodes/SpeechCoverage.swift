/// How far into a source's audio every word has been heard: transcribed, failed (and said so),
/// or skipped as silence. Chunks are cut in order but answered in any order (several are in
/// flight), so the bar stops at the earliest chunk still waiting for its answer. Downstream
/// nodes (captions) hold a segment until the bar passes its end, knowing no transcript of it is
/// still to come. Pure: the transcribe node feeds it cuts, answers and the chunker's progress.
public struct SpeechCoverage: Sendable, Equatable {
    private var waiting: [Int: Double] = [:]   // chunk id → its start, seconds on the source's clock
    private var decided: Double
    private var ended = false

    /// `start`: the source-clock time of the audio's first sample.
    public init(start: Double) {
        decided = start
    }

    /// A chunk `[start, …)` was cut and sent.
    public mutating func sent(_ id: Int, start: Double) { waiting[id] = start }

    /// The chunk's answer (or its failure) is in.
    public mutating func answered(_ id: Int) { waiting[id] = nil }

    /// The chunker has judged all audio before `time` (cut it or skipped it as silence).
    public mutating func decided(through time: Double) { decided = max(decided, time) }

    /// The audio track ended (or broke off, or could not be read): nothing more will be cut.
    public mutating func finish() { ended = true }

    /// Every transcript of the audio before this time is out; `.infinity` once the whole track is.
    public var heardThrough: Double {
        if let earliest = waiting.values.min() { return min(earliest, decided) }
        return ended ? .infinity : decided
    }
}
