/// `count` values in [−1, 1] from a linear congruential generator: the same inputs on every
/// run, for the kernel tests that compare a fast kernel with its reference twin.
public func random(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int(state >> 40) % 2001 - 1000) / 1000
    }
}
