import Foundation

/// Media times as people type and read them: `75`, `75.5`, `1:15`, `0:01:15.5`.
public enum MediaTime {
    /// Seconds from `text`, or nil when it is not a time (negative, empty parts, minutes or
    /// seconds of 60 and more after a colon, not finite).
    public static func seconds(parsing text: String) -> Double? {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        var total = 0.0
        for (i, part) in parts.enumerated() {
            let last = i == parts.count - 1
            guard part.allSatisfy({ $0.isNumber || (last && $0 == ".") }), let value = Double(part), value.isFinite, value >= 0 else { return nil }
            if i > 0 && value >= 60 { return nil }
            total = total * 60 + value
        }
        return total.isFinite ? total : nil
    }

    /// `m:ss.s` or `h:mm:ss.s`, for listings.
    public static func format(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "-" }
        let tenths = Int((seconds * 10).rounded())
        let h = tenths / 36000, m = (tenths / 600) % 60, s = Double(tenths % 600) / 10
        return h > 0 ? String(format: "%d:%02d:%04.1f", h, m, s) : String(format: "%d:%04.1f", m, s)
    }
}
