import Foundation

/// An exact ratio of two integers, as FFmpeg's AVRational: time bases and frame rates.
public struct Rational: Sendable, Hashable, Codable, CustomStringConvertible {
    public var numerator: Int64
    public var denominator: Int64

    public init(_ numerator: Int64, _ denominator: Int64) {
        self.numerator = numerator
        self.denominator = denominator
    }

    public var isValid: Bool { denominator != 0 && numerator != 0 }

    public var doubleValue: Double {
        denominator == 0 ? .nan : Double(numerator) / Double(denominator)
    }

    public var inverted: Rational { Rational(denominator, numerator) }

    public var description: String { "\(numerator)/\(denominator)" }

    /// Parses "30", "30000/1001", "29.97" or "0.5". Decimals become an exact fraction.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let slash = trimmed.firstIndex(of: "/") {
            guard let n = Int64(trimmed[..<slash]), let d = Int64(trimmed[trimmed.index(after: slash)...]), d != 0
            else { return nil }
            self.init(n, d)
            return
        }
        if let n = Int64(trimmed) {
            self.init(n, 1)
            return
        }
        let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].count <= 9, parts[1].allSatisfy(\.isNumber),
              parts[0].isEmpty || parts[0].allSatisfy(\.isNumber)
        else { return nil }
        var scale: Int64 = 1
        for _ in parts[1] { scale *= 10 }
        // A whole part too large for Int64, or whole × scale overflowing, is refused: it once
        // became 0 silently, or trapped on the overflow (SIGILL).
        guard let whole = parts[0].isEmpty ? 0 : Int64(parts[0]), let fraction = parts[1].isEmpty ? 0 : Int64(parts[1]) else { return nil }
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: scale)
        let (numerator, overflow2) = scaled.addingReportingOverflow(fraction)
        guard !overflow, !overflow2 else { return nil }
        self.init(numerator, scale)
    }
}

