import SightlineCore

/// Camera motion over a shot from consecutive sampled frames: the global shift that best
/// aligns two small luma thumbnails (exhaustive search over ±`maxShift` cells), then the
/// shot's shifts classified. Pure; the captions node feeds it frames.
public struct CameraMotion: Sendable {
    public enum Kind: String, Sendable, Equatable {
        /// Almost nothing moved between samples.
        case `static`
        /// Content inside moved, the frame did not (a fixed camera).
        case fixed
        /// Steady shift one way.
        case pan, tilt
        /// Shifts back and forth.
        case shake
        /// It moved, but no single shift explains it (fast motion, zoom, a cut the shot
        /// detector missed): say nothing rather than guess.
        case unclear
    }

    /// One pair of frames: the best shift (cells), the mean absolute difference it leaves,
    /// and the difference without shifting.
    public struct Step: Sendable, Equatable {
        public var dx: Int
        public var dy: Int
        public var residual: Float
        public var unshifted: Float
    }

    static let width = 64
    public var maxShift = 8
    /// Mean absolute luma difference (0…255) below which two thumbnails are the same picture.
    public var stillBelow: Float = 2.5
    /// Mean absolute difference above which the whole picture changed, not a part of it.
    public var movingAbove: Float = 18
    private var previous: [String: LumaThumbnail] = [:]

    public init() {}

    /// The step from the source's previous frame to this one (nil for its first frame).
    mutating func step(_ frame: Frame) -> Step? {
        let height = max(8, min(64, Self.width * frame.height / max(frame.width, 1)))
        let thumbnail = LumaThumbnail(frame: frame, width: Self.width, height: height)
        defer { previous[frame.sourceID] = thumbnail }
        guard let last = previous[frame.sourceID], last.width == thumbnail.width, last.height == thumbnail.height else { return nil }
        return Self.align(last, thumbnail, maxShift: maxShift)
    }

    mutating func forget(_ source: String) { previous[source] = nil }

    static func align(_ a: LumaThumbnail, _ b: LumaThumbnail, maxShift: Int) -> Step {
        func difference(_ dx: Int, _ dy: Int) -> Float {
            var sum: Float = 0
            var count = 0
            for y in max(0, -dy)..<min(a.height, a.height - dy) {
                for x in max(0, -dx)..<min(a.width, a.width - dx) {
                    sum += abs(a.values[y * a.width + x] - b.values[(y + dy) * b.width + x + dx])
                    count += 1
                }
            }
            return count > 0 ? sum / Float(count) : .infinity
        }
        let unshifted = difference(0, 0)
        var best = Step(dx: 0, dy: 0, residual: unshifted, unshifted: unshifted)
        let reach = min(maxShift, a.width / 4, a.height / 4)
        for dy in -reach...reach {
            for dx in -reach...reach where dx != 0 || dy != 0 {
                let d = difference(dx, dy)
                // A shift must clearly beat no shift: flat or repetitive pictures align anywhere.
                if d < best.residual * 0.9 && d < unshifted * 0.8 { best = Step(dx: dx, dy: dy, residual: d, unshifted: unshifted) }
            }
        }
        return best
    }

    /// The shot's camera from its steps.
    public func classify(_ steps: [Step]) -> Kind? {
        guard !steps.isEmpty else { return nil }
        let n = Double(steps.count)
        let still = steps.filter { $0.dx == 0 && $0.dy == 0 }
        if Double(still.count) >= 0.7 * n {
            if Double(still.filter { $0.unshifted < stillBelow }.count) >= 0.7 * n { return .static }
            // Something moved in front of a camera that did not: the change is local, so most
            // of the picture still matches. A picture that changed all over is a moving camera
            // (or a fast pan beyond the search) we cannot name.
            return Double(still.filter { $0.unshifted < movingAbove }.count) >= 0.7 * n ? .fixed : .unclear
        }
        // Shifts that explain the change (the aligned residual is low).
        let explained = steps.filter { $0.residual < max(stillBelow * 3, $0.unshifted * 0.5) }
        guard Double(explained.count) >= 0.6 * n else { return .unclear }
        let sx = explained.map { $0.dx.signum() }.reduce(0, +), sy = explained.map { $0.dy.signum() }.reduce(0, +)
        let movedX = explained.filter { $0.dx != 0 }.count, movedY = explained.filter { $0.dy != 0 }.count
        if movedX >= movedY && abs(sx) >= max(1, movedX * 3 / 4) && movedX > 0 { return .pan }
        if movedY > movedX && abs(sy) >= max(1, movedY * 3 / 4) { return .tilt }
        return explained.count >= 2 ? .shake : .unclear
    }
}
