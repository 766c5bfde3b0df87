import Testing
import SightlineTestSupport
@testable import SightlineKernels
import Dispatch
import Foundation
import Synchronization

/// Winograd F(2×2, 3×3) and F(4×4, 3×3) against the reference convolution.
@Suite struct WinogradTests {
    /// The 16 products on OpenBLAS, U as it is (any CPU).
    @Test(arguments: [1, 2])
    func matchesTheReferenceConvolution(threads: Int) throws {
        try check(threads: threads, packedPath: false)
    }

    /// The 16 products on the packed GEMM's AVX2 tiles, with the vector input and output transforms.
    @Test(.enabled(if: InstructionSets.avx2, InstructionSets.needsAVX2), arguments: [1, 2])
    func packedPathMatchesTheReferenceConvolution(threads: Int) throws {
        try KernelConfig.with(KernelConfig.process.capped(at: .avx2)) { try check(threads: threads, packedPath: true) }
    }

    /// F(4×4, 3×3): packed weights, the vector transforms (six rows split into four column
    /// phases) and the 36 products; sigmoid is not fused, so it runs over the output after.
    @Test(.enabled(if: InstructionSets.avx2, InstructionSets.needsAVX2), arguments: [1, 2])
    func fourByFourTilesMatchTheReferenceConvolution(threads: Int) throws {
        try KernelConfig.with(KernelConfig.process.capped(at: .avx2)) { try check(threads: threads, packedPath: true, tile: .four) }
    }

    /// Both tile sizes with the products on the packed GEMM's AVX-512 12×32 tiles.
    @Test(.enabled(if: InstructionSets.avx512, InstructionSets.needsAVX512), arguments: [1, 2])
    func packedPathOnAVX512TilesMatchesTheReferenceConvolution(threads: Int) throws {
        try KernelConfig.with(KernelConfig.process.capped(at: .avx512)) {
            try check(threads: threads, packedPath: true)
            try check(threads: threads, packedPath: true, tile: .four)
        }
    }

    private func check(threads: Int, packedPath: Bool, tile: Winograd.Tile = .two) throws {
        var seed: UInt64 = 3
        func random() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: seed >> 32)) / Float(Int32.max)
        }
        // (batch, channels, out channels, height, width, pads top/left/bottom/right, activation)
        let cases: [(Int, Int, Int, Int, Int, (Int, Int, Int, Int), Activation)] = [
            (1, 8, 8, 10, 10, (1, 1, 1, 1), .none),
            (2, 16, 24, 13, 17, (1, 1, 1, 1), .relu),          // odd output: partial tiles
            (1, 9, 12, 7, 5, (0, 0, 0, 0), .clip(min: 0, max: 6)),
            (1, 12, 8, 20, 31, (0, 0, 1, 1), .none),           // asymmetric (SAME-style) padding
            (1, 32, 16, 57, 43, (2, 1, 0, 3), .hardSwish),     // uneven pads, many tiles (several blocks)
            (1, 8, 8, 9, 70, (1, 2, 1, 0), .none),             // even left pad, rows past the 16-wide split
            (1, 8, 8, 6, 67, (1, 3, 1, 1), .relu),             // odd left pad over 1, odd width
        ] + (tile == .four ? [
            (1, 24, 16, 19, 75, (1, 1, 1, 1), .sigmoid),       // not fused: applied after; 32-wide split and its tail
            (2, 16, 8, 9, 9, (1, 2, 0, 1), .relu),              // partial tiles in both directions, two images
            (1, 96, 24, 40, 36, (1, 1, 1, 1), .none),           // the text detector's 96 → 24 layer, several rows
        ] : [])
        for (n, c, m, h, w, pad, activation) in cases {
            let g = Conv2DGeometry(kernelH: 3, kernelW: 3, padTop: pad.0, padLeft: pad.1, padBottom: pad.2, padRight: pad.3)
            #expect(Winograd.applies(channels: c, outChannels: m, groups: 1, geometry: g))
            let input = (0..<(n * c * h * w)).map { _ in random() }
            let weight = (0..<(m * c * 9)).map { _ in random() }
            let bias = (0..<m).map { _ in random() }
            let want = referenceConv2d(input: input, batch: n, channels: c, height: h, width: w, weight: weight, outChannels: m,
                                       bias: bias, groups: 1, geometry: g, activation: activation)
            let u = weight.withUnsafeBufferPointer {
                tile == .two ? Winograd.transformWeights($0.baseAddress!, outChannels: m, channels: c)
                    : Winograd.transformWeights43($0.baseAddress!, outChannels: m, channels: c)
            }
            do {
            let packed: [Float]? = packedPath ? try #require(Winograd.packTransformed(u, outChannels: m, channels: c, tile: tile)) : nil
            var got = [Float](repeating: .nan, count: want.count)
            input.withUnsafeBufferPointer { x in
                u.withUnsafeBufferPointer { uw in
                    bias.withUnsafeBufferPointer { b in
                        got.withUnsafeMutableBufferPointer { o in
                            func run(_ p: UnsafePointer<Float>?) {
                                Winograd.conv(input: x.baseAddress!, batch: n, channels: c, height: h, width: w, transformedWeights: uw.baseAddress!,
                                              outChannels: m, bias: b.baseAddress!, geometry: g, activation: activation, output: o.baseAddress!,
                                              threads: threads, packedWeights: p, tile: tile)
                            }
                            withOptionalPointer(packed, run)
                        }
                    }
                }
            }
            var error = 0.0, energy = 1e-30
            for (a, b) in zip(got, want) {
                error += Double(a - b) * Double(a - b)
                energy += Double(b) * Double(b)
            }
            #expect(error / energy < 1e-10, "n\(n) c\(c) m\(m) \(h)x\(w) pad \(pad) packed \(packed != nil) tile \(tile): NMSE \(error / energy)")
            #expect(!got.contains { $0.isNaN }, "every output written")
            }
        }
    }

    @Test func onlyThreeByThreeStrideOneUngroupedConvolutions() {
        let g = Conv2DGeometry(kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        #expect(!Winograd.applies(channels: 16, outChannels: 16, groups: 16, geometry: g))
        #expect(!Winograd.applies(channels: 16, outChannels: 16, groups: 1,
                                  geometry: Conv2DGeometry(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2)))
        #expect(!Winograd.applies(channels: 3, outChannels: 16, groups: 1, geometry: g), "too few channels to gain")
    }
}

@Suite struct KernelPoolTests {
    /// Every iteration runs exactly once, across many jobs in a row (the helper spinning
    /// between them), jobs after the helper has gone to sleep, and uneven iteration counts.
    @Test func everyIterationRunsOnce() throws {
        let pool = KernelPool.shared
        for iterations in [2, 3, 7, 64, 1000] {
            for round in 0..<50 {
                let hits = Mutex<[Int]>([Int](repeating: 0, count: iterations))
                pool.run(iterations) { i in hits.withLock { $0[i] += 1 } }
                #expect(hits.withLock { $0 } == [Int](repeating: 1, count: iterations), "\(iterations) iterations, round \(round)")
            }
        }
        Thread.sleep(forTimeInterval: 0.05)  // helpers park
        let hits = Mutex(0)
        pool.run(5) { _ in hits.withLock { $0 += 1 } }
        #expect(hits.withLock { $0 } == 5)
    }

    /// Callers on several threads at once, and a split inside a split: whoever finds the pool
    /// busy runs on Dispatch instead; nothing deadlocks and nothing is lost.
    @Test func concurrentAndNestedCallers() {
        let total = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<100 {
                KernelPool.shared.run(4) { _ in
                    KernelPool.shared.run(3) { _ in total.withLock { $0 += 1 } }
                }
            }
        }
        #expect(total.withLock { $0 } == 8 * 100 * 4 * 3)
    }

    /// The idle wait's timeline: `pauses` pause instructions (the clock is not read, however
    /// late it is), then yields until `parkAfter` has passed since the first yield, then park.
    @Test func idleWaitPausesThenYieldsThenParks() {
        var wait = IdleWait()
        var reads = 0
        var clock: UInt64 = 1_000_000
        let now = { () -> UInt64 in reads += 1; return clock }
        for _ in 0..<IdleWait.pauses { #expect(wait.pauseOrYield(now: now) == .pause) }
        #expect(reads == 0)
        #expect(wait.pauseOrYield(now: now) == .yield)  // the first yield starts the timer
        clock += IdleWait.parkAfter - 1
        #expect(wait.pauseOrYield(now: now) == .yield)
        clock += 1
        #expect(wait.pauseOrYield(now: now) == .park)
        #expect(wait.pauseOrYield(now: now) == .park)  // a join that keeps waiting keeps yielding
        #expect(reads == 4)
        // The rule on its own: the wait count decides pausing, elapsed time decides parking.
        #expect(IdleWait.action(waits: IdleWait.pauses - 1, elapsed: .max) == .pause)
        #expect(IdleWait.action(waits: IdleWait.pauses, elapsed: 0) == .yield)
        #expect(IdleWait.action(waits: IdleWait.pauses, elapsed: IdleWait.parkAfter) == .park)
    }
}
