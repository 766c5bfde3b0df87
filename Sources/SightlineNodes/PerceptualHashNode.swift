import Foundation
import SightlineCore
import SightlineGraph

/// `phash`: a 64-bit DCT perceptual hash per frame (32×32 luma, the 8×8 lowest frequencies,
/// each bit set where the coefficient exceeds their median), and the Hamming distance to the
/// previous frame of the same source. Near-duplicate frames have small distances.
public final class PerceptualHashNode: NodeProcessor {
    private var previous: [String: UInt64] = [:]

    public static let descriptor = NodeDescriptor(
        name: "phash",
        description: "64-bit DCT perceptual hash per frame and Hamming distance to the previous one; publishes a `phash` record.",
        role: .transform, inputs: .frames, outputs: .any, options: [], contract: NodeContract(produces: [.init(.phash)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, _ in .processor(PerceptualHashNode()) }

    public init() {}

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .frame(var frame):
            let hash = Self.hash(LumaThumbnail(frame: frame, width: 32, height: 32))
            let value = PerceptualHash(frameIndex: frame.decodeIndex, hash: hash, distance: previous[frame.sourceID].map { ($0 ^ hash).nonzeroBitCount })
            previous[frame.sourceID] = hash
            frame.metadata["sl.phash.hash"] = value.hex
            emit(.record(Record(.phash(value), frame: frame, provenance: [Provenance(name: "phash-dct", version: "1")])))
            emit(.frame(frame))
        case .endOfStream(let eos):
            previous[eos.sourceID] = nil
        case .record, .status:
            emit(item)
        }
    }

    /// Hash of a 32×32 luma thumbnail.
    static func hash(_ thumbnail: LumaThumbnail) -> UInt64 {
        let coefficients = lowFrequencyDCT(thumbnail.values, size: 32, keep: 8)
        // Median of the 63 AC coefficients; the DC term only says how bright the frame is.
        let median = coefficients.dropFirst().sorted()[31]
        var hash: UInt64 = 0
        for (i, c) in coefficients.enumerated() where c > median {
            hash |= 1 << UInt64(i)
        }
        return hash
    }

    /// The `keep`×`keep` lowest-frequency coefficients of the orthonormal 2-D DCT-II of a
    /// `size`×`size` image, row-major (u = row frequency, v = column frequency). Separable:
    /// rows first, then columns, so it costs size²·keep·2 multiplies.
    static func lowFrequencyDCT(_ pixels: [Float], size n: Int, keep k: Int) -> [Float] {
        var basis = [Float](repeating: 0, count: k * n)  // basis[u * n + x]
        for u in 0..<k {
            let scale = u == 0 ? sqrt(1 / Float(n)) : sqrt(2 / Float(n))
            for x in 0..<n { basis[u * n + x] = scale * cos(Float.pi * Float(2 * x + 1) * Float(u) / Float(2 * n)) }
        }
        var rows = [Float](repeating: 0, count: n * k)  // rows[y * k + v] = Σx p[y][x]·basis[v][x]
        for y in 0..<n {
            for v in 0..<k {
                var sum: Float = 0
                for x in 0..<n { sum += pixels[y * n + x] * basis[v * n + x] }
                rows[y * k + v] = sum
            }
        }
        var out = [Float](repeating: 0, count: k * k)
        for u in 0..<k {
            for v in 0..<k {
                var sum: Float = 0
                for y in 0..<n { sum += rows[y * k + v] * basis[u * n + y] }
                out[u * k + v] = sum
            }
        }
        return out
    }

    /// The textbook double sum, for tests: the reference twin of `lowFrequencyDCT`.
    static func referenceDCT(_ pixels: [Float], size n: Int, keep k: Int) -> [Float] {
        var out = [Float](repeating: 0, count: k * k)
        for u in 0..<k {
            for v in 0..<k {
                var sum = 0.0
                for y in 0..<n {
                    for x in 0..<n {
                        sum += Double(pixels[y * n + x])
                            * cos(Double.pi * Double(2 * y + 1) * Double(u) / Double(2 * n))
                            * cos(Double.pi * Double(2 * x + 1) * Double(v) / Double(2 * n))
                    }
                }
                let cu = u == 0 ? sqrt(1 / Double(n)) : sqrt(2 / Double(n))
                let cv = v == 0 ? sqrt(1 / Double(n)) : sqrt(2 / Double(n))
                out[u * k + v] = Float(cu * cv * sum)
            }
        }
        return out
    }
}
