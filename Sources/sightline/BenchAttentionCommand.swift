import ArgumentParser
import Foundation
import SightlineKernels

struct BenchAttentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Fused attention vs the unfused (full score matrix) way, sequence lengths 64…4096 (target ≥ 2× at 1024+).")

    @Option(help: "Comma-separated sequence lengths.") var lengths: String = "64,128,256,512,1024,2048,4096"
    @Option(help: "Heads.") var heads: Int = 12
    @Option(help: "Head dimension.") var headDim: Int = 32
    @Option(name: .customLong("repeat"), help: "Runs per length; the best is kept.") var repeats: Int = 3

    func run() throws {
        KernelThreads.setBLASThreads(1)
        print("sightline bench attention — batch 1, \(heads) heads × \(headDim), one thread, best of \(repeats)")
        print(pad("length", 8) + pad("unfused ms", 12) + pad("fused ms", 10) + pad("speed-up", 10) + pad("unfused scratch", 17) + "fused scratch")
        for length in lengths.split(separator: ",").compactMap({ Int($0) }) {
            let width = heads * headDim, count = length * width
            var seed: UInt64 = 7
            let data = (0..<(3 * count)).map { _ -> Float in
                seed = seed &* 6364136223846793005 &+ 1
                return Float(Int(seed >> 40) % 2001 - 1000) / 1000
            }
            var out = [Float](repeating: 0, count: count)
            var best = (unfused: Double.infinity, fused: Double.infinity)
            data.withUnsafeBufferPointer { d in
                let q = d.baseAddress!, k = q + count, v = k + count
                out.withUnsafeMutableBufferPointer { o in
                    for _ in 0..<repeats {
                        var start = monotonicSeconds()
                        unfusedAttention(q: q, k: k, v: v, out: o.baseAddress!, batch: 1, length: length, heads: heads, headDim: headDim,
                                         rowStride: width, keyMask: nil)
                        best.unfused = min(best.unfused, monotonicSeconds() - start)
                        start = monotonicSeconds()
                        attention(q: q, k: k, v: v, out: o.baseAddress!, batch: 1, length: length, heads: heads, headDim: headDim,
                                  rowStride: width, keyMask: nil)
                        best.fused = min(best.fused, monotonicSeconds() - start)
                    }
                }
            }
            // Scratch the kernels allocate: the score matrix, vs fixed query×key tiles.
            let unfusedBytes = length * length * 4
            let fusedBytes = (32 * 128 + 2 * 32 * headDim + 64) * 4
            print(pad("\(length)", 8) + pad(String(format: "%.2f", best.unfused * 1000), 12) + pad(String(format: "%.2f", best.fused * 1000), 10)
                  + pad(String(format: "%.2f×", best.unfused / best.fused), 10)
                  + pad(ByteCountFormatter.string(fromByteCount: Int64(unfusedBytes), countStyle: .memory), 17)
                  + ByteCountFormatter.string(fromByteCount: Int64(fusedBytes), countStyle: .memory))
        }
    }
}
