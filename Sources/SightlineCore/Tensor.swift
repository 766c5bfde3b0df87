/// A dense float32 tensor, row-major and contiguous (the strides follow from the shape).
/// Models run in float32; integer tensors (shapes, indices) live in the inference IR.
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "tensor data does not match its shape \(shape)")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    public var count: Int { data.count }
    public var rank: Int { shape.count }

    /// Row-major strides in elements.
    public var strides: [Int] { Tensor.strides(for: shape) }

    public static func strides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }
}

/// Steps a multi-dimensional index to the next position in row-major order (the last axis
/// fastest), wrapping to zeros after the end. `index` may cover only the leading axes of `shape`.
@inline(__always)
public func advanceIndex(_ index: inout [Int], within shape: [Int]) {
    var d = index.count - 1
    while d >= 0 {
        index[d] += 1
        if index[d] < shape[d] { return }
        index[d] = 0
        d -= 1
    }
}

/// Normalised mean squared error of `actual` against `expected`: Σ(a−e)² / Σe². The measure
/// every kernel test uses to compare a fast kernel with its reference twin.
public func normalizedMSE(_ actual: [Float], _ expected: [Float]) -> Double {
    precondition(actual.count == expected.count)
    var error = 0.0, energy = 0.0
    for i in actual.indices {
        let d = Double(actual[i]) - Double(expected[i])
        error += d * d
        energy += Double(expected[i]) * Double(expected[i])
    }
    return energy == 0 ? error : error / energy
}
