/// What upstream records said about frames not yet seen, by frame index: records come before
/// their frame, and a frame that never arrives must not make the table grow, so past
/// `capacity` entries the oldest frame is forgotten.
struct FrameTable<Value: Sendable>: Sendable {
    let capacity: Int
    private var values: [Int: Value] = [:]

    init(capacity: Int) {
        self.capacity = capacity
    }

    subscript(frame: Int) -> Value? { values[frame] }

    mutating func set(_ value: Value, for frame: Int) {
        values[frame] = value
        if values.count > capacity, let oldest = values.keys.min() { values[oldest] = nil }
    }

    /// The frame's value, removed.
    mutating func take(_ frame: Int) -> Value? { values.removeValue(forKey: frame) }
}
