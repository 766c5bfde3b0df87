/// A presentation timestamp in a stream's time base. `seconds` is the media time FFprobe
/// reports as `pts_time`: raw pts × time base, not shifted to start at zero.
public struct Timestamp: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var pts: Int64
    public var timeBase: Rational

    public init(pts: Int64, timeBase: Rational) {
        self.pts = pts
        self.timeBase = timeBase
    }

    public var seconds: Double {
        Double(pts) * Double(timeBase.numerator) / Double(timeBase.denominator)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        // Compare exactly by cross-multiplication; time bases here are small enough for Int64
        // products in practice, and we fall back to Double on overflow.
        let (l, lo) = lhs.pts.multipliedReportingOverflow(by: lhs.timeBase.numerator * rhs.timeBase.denominator)
        let (r, ro) = rhs.pts.multipliedReportingOverflow(by: rhs.timeBase.numerator * lhs.timeBase.denominator)
        if lo || ro { return lhs.seconds < rhs.seconds }
        return l < r
    }

    public var description: String { "\(pts)@\(timeBase)" }
}
