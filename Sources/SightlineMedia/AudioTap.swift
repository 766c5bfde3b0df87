import Foundation
import Synchronization

/// A live source's audio, handed from the source's demuxer to whoever wants it (the
/// `transcribe` node) without a second connection to the stream: a camera would serve a second
/// session twice the data, and a UDP stream cannot be received twice at all. The source decodes
/// audio only once someone asked for it. Blocks carry their time on the source's clock (the
/// timeline the frames are on). The buffer holds at most `maxSeconds`; a reader that falls
/// further behind loses the oldest audio, counted, never silently.
public final class AudioTap: Sendable {
    public struct Block: Sendable, Equatable {
        /// Seconds of the first sample on the source's clock.
        public var start: Double
        public var samples: [Float]

        public init(start: Double, samples: [Float]) {
            self.start = start
            self.samples = samples
        }
    }

    /// What the source found about its audio.
    public enum Track: Sendable, Equatable {
        case unknown
        case none
        case present
        /// It has one, but it cannot be decoded (said why).
        case broken(String)
    }

    public struct Taken: Sendable {
        public var blocks: [Block]
        public var track: Track
        /// Seconds of audio dropped because the reader fell `maxSeconds` behind (since last taken).
        public var droppedSeconds: Double
        /// The source ended: no more blocks will come after these.
        public var finished: Bool
    }

    private struct State {
        var wanted = false
        var blocks: [Block] = []
        var bufferedSamples = 0
        var track = Track.unknown
        var dropped = 0.0
        var finished = false
    }

    public let sampleRate: Int
    public let maxSeconds: Double
    private let state = Mutex(State())

    public init(sampleRate: Int = 16_000, maxSeconds: Double = 120) {
        self.sampleRate = sampleRate
        self.maxSeconds = maxSeconds
    }

    /// Asks the source to decode its audio from now on.
    public func want() { state.withLock { $0.wanted = true } }

    public var isWanted: Bool { state.withLock { $0.wanted } }

    /// The source: what it found about its audio track on (re)opening.
    public func found(_ track: Track) { state.withLock { $0.track = track } }

    /// The source: the next decoded block.
    public func push(_ block: Block) {
        state.withLock { s in
            guard s.wanted, !s.finished else { return }
            s.blocks.append(block)
            s.bufferedSamples += block.samples.count
            let limit = Int(maxSeconds * Double(sampleRate))
            while s.bufferedSamples > limit, s.blocks.count > 1 {
                let oldest = s.blocks.removeFirst()
                s.bufferedSamples -= oldest.samples.count
                s.dropped += Double(oldest.samples.count) / Double(sampleRate)
            }
        }
    }

    /// The source ended.
    public func finish() { state.withLock { $0.finished = true } }

    /// The reader: everything pushed since the last call.
    public func take() -> Taken {
        state.withLock { s in
            defer {
                s.blocks.removeAll()
                s.bufferedSamples = 0
                s.dropped = 0
            }
            return Taken(blocks: s.blocks, track: s.track, droppedSeconds: s.dropped, finished: s.finished)
        }
    }
}

extension AudioTap {
    private static let registry = Mutex<[String: AudioTap]>([:])

    /// Makes the tap findable by the id returned (frames carry it to nodes downstream in the
    /// same process; an id from another process finds nothing).
    public static func register(_ tap: AudioTap) -> String {
        let id = UUID().uuidString
        registry.withLock { $0[id] = tap }
        return id
    }

    public static func find(_ id: String) -> AudioTap? { registry.withLock { $0[id] } }

    public static func unregister(_ id: String) { registry.withLock { _ = $0.removeValue(forKey: id) } }
}
