import Foundation
import SightlineCore

/// A box's motion as SORT models it (Bewley et al., 2016): a Kalman filter over the centre
/// (u, v), the area s and the aspect ratio r, with constant velocity for u, v and s (r is
/// taken as constant). Time is media seconds, so irregular sampling is handled: the
/// prediction step is scaled by the gap since the last update.
///
/// Written here: the filter is seven numbers and a few small matrix products, and no package
/// on our list provides one.
struct BoxKalmanFilter: Sendable, Equatable {
    /// State [u, v, s, r, u', v', s'] and its covariance (7×7, row-major).
    private(set) var state: [Double]
    private(set) var covariance: [Double]

    /// Noise settings in SORT's spirit: velocities start very uncertain, positions are
    /// measured fairly well, and the process noise grows with the time step.
    static let measurementNoise: [Double] = [1, 1, 10, 0.01]
    static let processNoise: [Double] = [1, 1, 1, 0.01, 0.01, 0.01, 0.0001]

    init(box: PixelBox) {
        let z = Self.measurement(box)
        state = z + [0, 0, 0]
        covariance = [Double](repeating: 0, count: 49)
        let initial: [Double] = [10, 10, 10, 10, 1e4, 1e4, 1e4]
        for i in 0..<7 { covariance[i * 7 + i] = initial[i] }
    }

    static func measurement(_ box: PixelBox) -> [Double] {
        let w = max(box.width, 1e-3), h = max(box.height, 1e-3)
        return [box.x + w / 2, box.y + h / 2, w * h, w / h]
    }

    /// The box the state stands for.
    var box: PixelBox {
        let s = max(state[2], 1e-6), r = max(state[3], 1e-6)
        let w = (s * r).squareRoot(), h = s / max(w, 1e-6)
        return PixelBox(x: state[0] - w / 2, y: state[1] - h / 2, width: w, height: h)
    }

    /// Velocity of the centre in pixels per second.
    var velocity: (x: Double, y: Double) { (state[4], state[5]) }

    /// Advances the state by `dt` seconds (constant velocity).
    mutating func predict(dt: Double) {
        let dt = max(dt, 0)
        // Area cannot go negative: stop shrinking it when the prediction would.
        if state[2] + state[6] * dt <= 0 { state[6] = 0 }
        var f = Self.identity(7)
        f[0 * 7 + 4] = dt
        f[1 * 7 + 5] = dt
        f[2 * 7 + 6] = dt
        state = Self.multiply(f, state, 7, 7, 1)
        // P = F P Fᵀ + Q·max(dt, small): the uncertainty grows with the gap.
        let fp = Self.multiply(f, covariance, 7, 7, 7)
        covariance = Self.multiply(fp, Self.transpose(f, 7, 7), 7, 7, 7)
        let scale = max(dt, 1e-3)
        for i in 0..<7 { covariance[i * 7 + i] += Self.processNoise[i] * scale * Self.sizeScale(i, state) }
    }

    /// Corrects the state with a measured box.
    mutating func update(box: PixelBox) {
        let z = Self.measurement(box)
        // H picks the first four state values.
        var innovation = (0..<4).map { z[$0] - state[$0] }
        // Keep the aspect ratio's innovation sane for a detector that jitters.
        innovation[3] = max(min(innovation[3], 1), -1)
        var s = [Double](repeating: 0, count: 16)
        for i in 0..<4 {
            for j in 0..<4 { s[i * 4 + j] = covariance[i * 7 + j] }
            s[i * 4 + i] += Self.measurementNoise[i] * Self.sizeScale(i, state)
        }
        guard let sInverse = Self.inverse4(s) else { return }
        // K = P Hᵀ S⁻¹ (7×4).
        var pht = [Double](repeating: 0, count: 28)
        for i in 0..<7 { for j in 0..<4 { pht[i * 4 + j] = covariance[i * 7 + j] } }
        let gain = Self.multiply(pht, sInverse, 7, 4, 4)
        let correction = Self.multiply(gain, innovation, 7, 4, 1)
        for i in 0..<7 { state[i] += correction[i] }
        // P = (I − K H) P
        var ikh = Self.identity(7)
        for i in 0..<7 { for j in 0..<4 { ikh[i * 7 + j] -= gain[i * 4 + j] } }
        covariance = Self.multiply(ikh, covariance, 7, 7, 7)
    }

    /// Noise in pixels² for the area terms scales with the box's size, so a face 30 px wide
    /// and a body 500 px tall are followed alike.
    private static func sizeScale(_ i: Int, _ state: [Double]) -> Double {
        switch i {
        case 0, 1, 4, 5: return max(state[2], 1).squareRoot()
        case 2, 6: return max(state[2], 1)
        default: return 1
        }
    }

    static func identity(_ n: Int) -> [Double] {
        var m = [Double](repeating: 0, count: n * n)
        for i in 0..<n { m[i * n + i] = 1 }
        return m
    }

    static func multiply(_ a: [Double], _ b: [Double], _ n: Int, _ k: Int, _ m: Int) -> [Double] {
        var c = [Double](repeating: 0, count: n * m)
        for i in 0..<n {
            for p in 0..<k {
                let aip = a[i * k + p]
                if aip == 0 { continue }
                for j in 0..<m { c[i * m + j] += aip * b[p * m + j] }
            }
        }
        return c
    }

    static func transpose(_ a: [Double], _ n: Int, _ m: Int) -> [Double] {
        var t = [Double](repeating: 0, count: n * m)
        for i in 0..<n { for j in 0..<m { t[j * n + i] = a[i * m + j] } }
        return t
    }

    /// Gauss–Jordan inverse of a 4×4 matrix with partial pivoting; nil when singular.
    static func inverse4(_ m: [Double]) -> [Double]? {
        var a = m, inv = identity(4)
        for col in 0..<4 {
            guard let pivot = (col..<4).max(by: { abs(a[$0 * 4 + col]) < abs(a[$1 * 4 + col]) }), abs(a[pivot * 4 + col]) > 1e-12 else {
                return nil
            }
            if pivot != col {
                for j in 0..<4 {
                    a.swapAt(pivot * 4 + j, col * 4 + j)
                    inv.swapAt(pivot * 4 + j, col * 4 + j)
                }
            }
            let d = a[col * 4 + col]
            for j in 0..<4 {
                a[col * 4 + j] /= d
                inv[col * 4 + j] /= d
            }
            for row in 0..<4 where row != col {
                let f = a[row * 4 + col]
                if f == 0 { continue }
                for j in 0..<4 {
                    a[row * 4 + j] -= f * a[col * 4 + j]
                    inv[row * 4 + j] -= f * inv[col * 4 + j]
                }
            }
        }
        return inv
    }
}

/// Minimum-cost assignment of rows to columns (the Hungarian method, O(n³)), for matching
/// predicted tracks to detections. Rectangular matrices are padded with a cost no real pair
/// reaches. Written here: a few dozen lines, and no package on our list has it.
enum Assignment {
    /// For each row, the column it is assigned to (nil when it is assigned to padding).
    static func solve(_ cost: [[Double]]) -> [Int?] {
        let rows = cost.count
        let columns = cost.first?.count ?? 0
        guard rows > 0, columns > 0 else { return [Int?](repeating: nil, count: rows) }
        let n = max(rows, columns)
        let padding = (cost.flatMap { $0 }.max() ?? 0) + 1
        var a = [[Double]](repeating: [Double](repeating: padding, count: n + 1), count: n + 1)
        for i in 0..<rows { for j in 0..<columns { a[i + 1][j + 1] = cost[i][j] } }
        // Potentials u, v; p[j]: the row matched to column j (1-based, 0 = none).
        var u = [Double](repeating: 0, count: n + 1), v = [Double](repeating: 0, count: n + 1)
        var p = [Int](repeating: 0, count: n + 1), way = [Int](repeating: 0, count: n + 1)
        for i in 1...n {
            p[0] = i
            var j0 = 0
            var minimum = [Double](repeating: .infinity, count: n + 1)
            var used = [Bool](repeating: false, count: n + 1)
            repeat {
                used[j0] = true
                let i0 = p[j0]
                var delta = Double.infinity, j1 = 0
                for j in 1...n where !used[j] {
                    let current = a[i0][j] - u[i0] - v[j]
                    if current < minimum[j] {
                        minimum[j] = current
                        way[j] = j0
                    }
                    if minimum[j] < delta {
                        delta = minimum[j]
                        j1 = j
                    }
                }
                for j in 0...n {
                    if used[j] {
                        u[p[j]] += delta
                        v[j] -= delta
                    } else {
                        minimum[j] -= delta
                    }
                }
                j0 = j1
            } while p[j0] != 0
            repeat {
                let j1 = way[j0]
                p[j0] = p[j1]
                j0 = j1
            } while j0 != 0
        }
        var result = [Int?](repeating: nil, count: rows)
        for j in 1...n where p[j] >= 1 && p[j] <= rows && j <= columns { result[p[j] - 1] = j - 1 }
        return result
    }
}

/// One detection handed to the tracker.
public struct TrackedDetection: Sendable, Equatable {
    public var label: String
    public var box: PixelBox
    public var score: Double

    public init(label: String, box: PixelBox, score: Double) {
        self.label = label
        self.box = box
        self.score = score
    }
}

/// A multi-object tracker in SORT's manner, as a pure state machine: feed each sampled
/// frame's detections with its media time, get the tracks that are visible, the ones that
/// entered (confirmed) and the ones that left.
///
/// - Matching: predicted boxes against detections of the same label by IoU, solved as an
///   assignment. Sampled video (1–5 frames a second) moves people further between frames
///   than SORT's 30 fps assumption, so a pair whose boxes do not overlap may still match when
///   the detection lies within `maxJump` box sizes of the prediction and is of similar size.
/// - Births: an unmatched detection starts a tentative track; it is confirmed (and `entered`)
///   after `minHits` matches — or at once for a detection scoring `confidentScore` or more.
/// - Deaths: a track missed for more than `maxMisses` frames, or for `maxGap` seconds, has
///   `exited`; its span ends at the last frame it was seen. A missed detection in between
///   only coasts the track on its prediction: the id does not change.
public struct MultiObjectTracker: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var minIoU: Double = 0.2
        public var maxJump: Double = 1.0
        public var minHits: Int = 2
        public var confidentScore: Double = 0.8
        public var maxMisses: Int = 2
        public var maxGap: Double = 5
        /// Points kept on a track's path (older ones thinned out evenly).
        public var maxPathPoints: Int = 64

        public init() {}
    }

    /// A track as reported.
    public struct Track: Sendable, Equatable {
        public var id: Int
        public var label: String
        public var box: PixelBox
        public var score: Double
        /// Pixels per second.
        public var velocity: (x: Double, y: Double)
        public var firstSeen: Double
        public var lastSeen: Double
        public var hits: Int
        /// Frames in a row it was not detected (0: seen in this frame).
        public var misses: Int
        /// Centres and box areas with their media time, oldest first.
        public var path: [(time: Double, x: Double, y: Double, area: Double)]
        public var bestScore: Double

        public static func == (a: Track, b: Track) -> Bool {
            a.id == b.id && a.label == b.label && a.box == b.box && a.hits == b.hits && a.misses == b.misses
                && a.firstSeen == b.firstSeen && a.lastSeen == b.lastSeen
        }
    }

    /// What one frame changed.
    public struct Update: Sendable {
        /// Confirmed tracks after this frame (seen now, or coasting through a miss).
        public var tracks: [Track]
        public var entered: [Track]
        public var exited: [Track]

        /// Confirmed tracks of `label` detected in this frame.
        public func visible(_ label: String) -> Int { tracks.filter { $0.label == label && $0.misses == 0 }.count }
    }

    private struct State: Sendable {
        var id: Int
        var label: String
        var filter: BoxKalmanFilter
        var score: Double
        var bestScore: Double
        var firstSeen: Double
        var lastSeen: Double
        var lastTime: Double
        var hits: Int
        var misses: Int
        var confirmed: Bool
        var path: [(time: Double, x: Double, y: Double, area: Double)]
    }

    public let configuration: Configuration
    private var states: [State] = []
    private var nextID = 1
    private var lastTime: Double?

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// One frame's detections at media time `time`.
    public mutating func update(_ detections: [TrackedDetection], at time: Double) -> Update {
        let dt = lastTime.map { max(time - $0, 0) } ?? 0
        lastTime = time
        for i in states.indices { states[i].filter.predict(dt: dt) }

        // Cost: 1 − IoU for overlapping pairs; 1 + distance/size for near ones; impossible otherwise.
        let impossible = 1e6
        var cost = [[Double]](repeating: [Double](repeating: impossible, count: detections.count), count: states.count)
        for (i, state) in states.enumerated() {
            let predicted = state.filter.box
            for (j, detection) in detections.enumerated() where detection.label == state.label {
                let iou = predicted.iou(detection.box)
                if iou >= configuration.minIoU {
                    cost[i][j] = 1 - iou
                } else if let distance = Self.jump(from: predicted, to: detection.box), distance <= configuration.maxJump {
                    cost[i][j] = 1 + distance
                }
            }
        }
        let assignment = Assignment.solve(cost)
        var matchedDetections = Set<Int>()
        var entered: [Track] = []
        for i in states.indices {
            if let j = assignment[i], cost[i][j] < impossible {
                matchedDetections.insert(j)
                let detection = detections[j]
                states[i].filter.update(box: detection.box)
                states[i].score = detection.score
                states[i].bestScore = max(states[i].bestScore, detection.score)
                states[i].hits += 1
                states[i].misses = 0
                states[i].lastSeen = time
                appendPath(&states[i], time: time, box: detection.box)
                if !states[i].confirmed && (states[i].hits >= configuration.minHits || detection.score >= configuration.confidentScore) {
                    states[i].confirmed = true
                    entered.append(Self.report(states[i]))
                }
            } else {
                states[i].misses += 1
            }
        }
        for (j, detection) in detections.enumerated() where !matchedDetections.contains(j) {
            var state = State(id: 0, label: detection.label, filter: BoxKalmanFilter(box: detection.box), score: detection.score,
                              bestScore: detection.score, firstSeen: time, lastSeen: time, lastTime: time, hits: 1, misses: 0,
                              confirmed: false, path: [])
            appendPath(&state, time: time, box: detection.box)
            if configuration.minHits <= 1 || detection.score >= configuration.confidentScore {
                state.confirmed = true
            }
            state.id = nextID
            nextID += 1
            if state.confirmed { entered.append(Self.report(state)) }
            states.append(state)
        }
        var exited: [Track] = []
        states.removeAll { state in
            let gone = state.misses > configuration.maxMisses || time - state.lastSeen > configuration.maxGap
            if gone && state.confirmed { exited.append(Self.report(state)) }
            return gone
        }
        return Update(tracks: states.filter(\.confirmed).map(Self.report), entered: entered, exited: exited)
    }

    /// The end of the stream: every confirmed track still open has exited.
    public mutating func finish() -> [Track] {
        let open = states.filter(\.confirmed).map(Self.report)
        states.removeAll()
        lastTime = nil
        return open
    }

    /// Centre distance over the predicted box's size (its diagonal), when the sizes are within
    /// a factor of two; nil otherwise.
    static func jump(from a: PixelBox, to b: PixelBox) -> Double? {
        let areaRatio = max(a.area, 1) / max(b.area, 1)
        guard areaRatio < 4, areaRatio > 0.25 else { return nil }
        let dx = a.centre.x - b.centre.x, dy = a.centre.y - b.centre.y
        let size = max((a.width * a.width + a.height * a.height).squareRoot(), 1)
        return (dx * dx + dy * dy).squareRoot() / size
    }

    private func appendPath(_ state: inout State, time: Double, box: PixelBox) {
        state.path.append((time, box.centre.x, box.centre.y, box.area))
        if state.path.count > configuration.maxPathPoints {
            // Keep the first and last; drop every other point in between.
            let kept = state.path.enumerated().filter { $0.offset == 0 || $0.offset == state.path.count - 1 || $0.offset % 2 == 0 }
            state.path = kept.map(\.element)
        }
    }

    private static func report(_ state: State) -> Track {
        // A track seen in this frame is reported where it was measured (filtered); a coasting one where it is predicted.
        Track(id: state.id, label: state.label, box: state.filter.box, score: state.score, velocity: state.filter.velocity,
              firstSeen: state.firstSeen, lastSeen: state.lastSeen, hits: state.hits, misses: state.misses, path: state.path,
              bestScore: state.bestScore)
    }
}
