import Foundation

/// Splits a mono audio track into chunks for a speech model: cuts in the middle of pauses,
/// never makes a chunk longer than `maxSeconds` (Whisper-class models take 30 s), and sends no
/// chunk that is only silence. A pure state machine over 30 ms frames of samples, so the same
/// code serves a file read at once and a live stream read block by block.
public struct SpeechChunker: Sendable {
    public struct Settings: Sendable {
        public var sampleRate = 16_000
        /// A frame whose RMS level is below this many dB full scale is silent.
        public var silenceDB: Float = -40
        /// A pause at least this long ends a chunk (once it holds `minSeconds`).
        public var minPause = 0.4
        public var minSeconds = 1.0
        public var maxSeconds = 30.0

        public init(sampleRate: Int = 16_000, silenceDB: Float = -40, minPause: Double = 0.4, minSeconds: Double = 1, maxSeconds: Double = 30) {
            self.sampleRate = sampleRate
            self.silenceDB = silenceDB
            self.minPause = minPause
            self.minSeconds = minSeconds
            self.maxSeconds = max(1, maxSeconds)
        }
    }

    public struct Chunk: Sendable, Equatable {
        /// Seconds from the track's first sample.
        public var start: Double
        public var samples: [Float]
        public var sampleRate: Int
        public var end: Double { start + Double(samples.count) / Double(sampleRate) }
    }

    public let settings: Settings
    /// Seconds of silence left out (never sent).
    public private(set) var silentSecondsSkipped = 0.0
    /// Seconds from the track's start up to which every sample has been cut into a chunk or
    /// skipped as silence: what follows is still held, undecided.
    public var decidedThrough: Double { seconds(bufferStart) }
    private let frameLength: Int
    private var pending: [Float] = []          // less than one frame, not yet judged
    private var buffer: [Float] = []           // the current chunk, whole frames
    private var loud: [Bool] = []              // per frame of `buffer`
    private var levels: [Float] = []           // per frame of `buffer`, dB
    private var bufferStart = 0                // sample index of buffer[0]
    private var consumed = 0                   // samples taken in so far

    public init(settings: Settings = Settings()) {
        self.settings = settings
        frameLength = max(1, settings.sampleRate * 3 / 100)
    }

    /// Takes the next samples; returns the chunks they complete.
    public mutating func push(_ samples: [Float]) -> [Chunk] {
        pending += samples
        consumed += samples.count
        var done: [Chunk] = []
        var offset = 0
        while pending.count - offset >= frameLength {
            let frame = pending[offset..<(offset + frameLength)]
            offset += frameLength
            var power: Float = 0
            for s in frame { power += s * s }
            let level = 10 * log10(max(power / Float(frameLength), 1e-12))
            buffer += frame
            levels.append(level)
            loud.append(level >= settings.silenceDB)
            if let chunk = step() { done.append(chunk) }
        }
        pending.removeFirst(offset)
        return done
    }

    /// The end of the track: the last chunk, if it holds speech.
    public mutating func finish() -> [Chunk] {
        buffer += pending
        pending = []
        defer { reset(keepingFrom: loud.count) }
        guard loud.contains(true) else {
            silentSecondsSkipped += seconds(buffer.count)
            return []
        }
        return [chunk(frames: loud.count, samples: buffer.count)]
    }

    private mutating func step() -> Chunk? {
        let frameSeconds = Double(frameLength) / Double(settings.sampleRate)
        let pauseFrames = max(1, Int((settings.minPause / frameSeconds).rounded()))
        var trailingQuiet = 0
        for flag in loud.reversed() { if flag { break }; trailingQuiet += 1 }
        // Only silence so far: keep at most one pause's worth ahead of the speech to come.
        if !loud.contains(true) {
            if loud.count > pauseFrames {
                let drop = loud.count - pauseFrames
                silentSecondsSkipped += seconds(drop * frameLength)
                reset(keepingFrom: drop)
            }
            return nil
        }
        // A pause after enough speech: cut in its middle.
        if trailingQuiet >= pauseFrames, Double(loud.count) * frameSeconds >= settings.minSeconds {
            let cut = loud.count - trailingQuiet / 2
            let out = chunk(frames: cut, samples: cut * frameLength)
            reset(keepingFrom: cut)
            return out
        }
        // Too long: cut at the quietest frame of the last third.
        let maxFrames = Int(settings.maxSeconds / frameSeconds)
        if loud.count >= maxFrames {
            let from = maxFrames * 2 / 3
            var cut = loud.count
            var quietest = Float.infinity
            for index in from..<loud.count where levels[index] < quietest {
                quietest = levels[index]
                cut = index + 1
            }
            cut = min(cut, maxFrames)
            let out = chunk(frames: cut, samples: cut * frameLength)
            reset(keepingFrom: cut)
            return out
        }
        return nil
    }

    private func chunk(frames: Int, samples: Int) -> Chunk {
        Chunk(start: seconds(bufferStart), samples: Array(buffer.prefix(samples)), sampleRate: settings.sampleRate)
    }

    private mutating func reset(keepingFrom frames: Int) {
        let samples = min(buffer.count, frames * frameLength)
        buffer.removeFirst(samples)
        loud.removeFirst(min(frames, loud.count))
        levels.removeFirst(min(frames, levels.count))
        bufferStart += samples
    }

    private func seconds(_ samples: Int) -> Double { Double(samples) / Double(settings.sampleRate) }
}

/// 16-bit PCM WAV bytes of mono float samples (clipped to -1…1): the upload format every
/// transcription server takes.
public enum WAVFile {
    public static func bytes(_ samples: [Float], sampleRate: Int) -> Data {
        var out = Data(capacity: 44 + samples.count * 2)
        func put32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func put16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        let dataBytes = UInt32(samples.count * 2)
        out.append(contentsOf: Array("RIFF".utf8)); put32(36 + dataBytes)
        out.append(contentsOf: Array("WAVE".utf8))
        out.append(contentsOf: Array("fmt ".utf8)); put32(16); put16(1); put16(1)
        put32(UInt32(sampleRate)); put32(UInt32(sampleRate * 2)); put16(2); put16(16)
        out.append(contentsOf: Array("data".utf8)); put32(dataBytes)
        var pcm = [Int16](repeating: 0, count: samples.count)
        for (index, sample) in samples.enumerated() {
            pcm[index] = Int16((max(-1, min(1, sample.isNaN ? 0 : sample)) * 32767).rounded()).littleEndian
        }
        pcm.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }
}
