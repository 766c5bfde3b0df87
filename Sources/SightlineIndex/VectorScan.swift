import CSightlineKernels
import Dispatch
import Foundation

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
    ///
    /// Large scans are split into contiguous row ranges over `threads` cores: one core cannot
    /// draw the memory bandwidth a 1M-row pass needs (measured by `bench search`).
    public func scores(_ query: [Float], vectorised: Bool = true, threads: Int = VectorScan.defaultThreads) -> [Float] {
        precondition(query.count == dimension, "query of \(query.count) values against \(dimension)-d vectors")
        let rowCount = ids.count
        var out = [Float](repeating: 0, count: rowCount)
        guard rowCount > 0 else { return out }
        let parts = rowCount < Self.rowsPerThread ? 1 : max(1, min(threads, rowCount / Self.rowsPerThread))
        let dimension = self.dimension
        halves.withUnsafeBufferPointer { rows in
            query.withUnsafeBufferPointer { q in
                out.withUnsafeMutableBufferPointer { o in
                    guard let rowBase = rows.baseAddress, let queryBase = q.baseAddress, let outBase = o.baseAddress else { return }
                    if parts == 1 {
                        sl_dot_f16_rows(rowBase, rowCount, dimension, queryBase, outBase, vectorised)
                        return
                    }
                    let shared = ScanBuffers(rows: rowBase, query: queryBase, out: outBase)
                    let share = (rowCount + parts - 1) / parts
                    DispatchQueue.concurrentPerform(iterations: parts) { part in
                        let first = part * share
                        let n = min(share, rowCount - first)
                        guard n > 0 else { return }
                        sl_dot_f16_rows(shared.rows + first * dimension, n, dimension, shared.query, shared.out + first, vectorised)
                    }
                }
            }
        }
        return out
    }

    /// Below this many rows per thread, splitting costs more than it saves.
    public static let rowsPerThread = 32_768
    public static let defaultThreads = ProcessInfo.processInfo.activeProcessorCount

    /// The reference: Swift's own float16 conversion and a plain loop.
    public func referenceScores(_ query: [Float]) -> [Float] {
        (0..<ids.count).map { row in
            var sum: Float = 0
            for i in 0..<dimension { sum += Float(Float16(bitPattern: halves[row * dimension + i])) * query[i] }
            return sum
        }
    }

    /// The buffers of one split scan. Each part writes a disjoint range of `out` and only
    /// reads the rest, and the call returns only when every part is done: sharing is sound.
    private struct ScanBuffers: @unchecked Sendable {
        let rows: UnsafePointer<UInt16>
        let query: UnsafePointer<Float>
        let out: UnsafeMutablePointer<Float>
    }

    public static var hasVectorKernel: Bool { sl_has_f16c() }
}
