import CSightlineKernels

/// Unit vectors of one space held in memory as float16, one row per shot, scanned in full for
/// each query. A full scan is exact and, at 384 dimensions, reads 768 bytes a shot: 1M shots
/// are 0.77 GB and one memory-bound pass (`bench search` measures it). No approximate index
/// until the benchmark shows a need for one.
public struct VectorScan: Sendable {
    public let dimension: Int
    /// The shot id of each row.
    public private(set) var ids: [Int64] = []
    private var halves: [UInt16] = []

    public init(dimension: Int) {
        self.dimension = dimension
    }

    public var count: Int { ids.count }
    public var bytes: Int { halves.count * 2 + ids.count * 8 }

    public mutating func reserve(_ rows: Int) {
        ids.reserveCapacity(rows)
        halves.reserveCapacity(rows * dimension)
    }

    /// Adds a row of float16 bit patterns; false (and nothing added) when its length is wrong.
    @discardableResult
    public mutating func append(id: Int64, bits: [UInt16]) -> Bool {
        guard bits.count == dimension else { return false }
        ids.append(id)
        halves.append(contentsOf: bits)
        return true
    }

    public mutating func append(id: Int64, vector: [Float]) {
        precondition(vector.count == dimension, "vector of \(vector.count) values in a \(dimension)-d scan")
        append(id: id, bits: vector.map { Float16($0).bitPattern })
    }

    /// The dot product of `query` with every row, in row order. `vectorised` false runs the
    /// portable loop (the reference the tests compare the AVX2/F16C kernel with).
    public func scores(_ query: [Float], vectorised: Bool = true) -> [Float] {
        precondition(query.count == dimension, "query of \(query.count) values against \(dimension)-d vectors")
        var out = [Float](repeating: 0, count: ids.count)
        guard !ids.isEmpty else { return out }
        halves.withUnsafeBufferPointer { rows in
            query.withUnsafeBufferPointer { q in
                out.withUnsafeMutableBufferPointer { o in
                    sl_dot_f16_rows(rows.baseAddress, ids.count, dimension, q.baseAddress, o.baseAddress, vectorised)
                }
            }
        }
        return out
    }

    /// The reference: Swift's own float16 conversion and a plain loop.
    public func referenceScores(_ query: [Float]) -> [Float] {
        (0..<ids.count).map { row in
            var sum: Float = 0
            for i in 0..<dimension { sum += Float(Float16(bitPattern: halves[row * dimension + i])) * query[i] }
            return sum
        }
    }

    public static var hasVectorKernel: Bool { sl_has_f16c() }
}
