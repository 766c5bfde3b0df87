import Testing
#if canImport(Glibc)
import Glibc
#endif
import SightlineCore
import SightlineTestSupport
@testable import SightlineKernels

/// Each fast kernel against its reference twin, by normalised MSE.
@Suite struct KernelTests {
    /// A kernel's output (`count` values, NaN until written) on input, weights and bias.
    private func output(count: Int, input: [Float], weights: [Float], bias: [Float],
                        _ kernel: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        input.withUnsafeBufferPointer { i in
            weights.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    out.withUnsafeMutableBufferPointer { kernel(i.baseAddress!, w.baseAddress!, b.baseAddress!, $0.baseAddress!) }
                }
            }
        }
        return out
    }

    @Test(arguments: [(1, 1, 1), (7, 5, 3), (64, 49, 147), (33, 17, 300)])
    func gemmMatchesReference(m: Int, n: Int, k: Int) {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = random(m * k, seed: 1), b = random(k * n, seed: 2)
            var expected = random(m * n, seed: 3)
            var actual = expected
            referenceGemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: ta ? m : k, b: b, ldb: tb ? k : n,
                          beta: 0.25, c: &expected, ldc: n)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    actual.withUnsafeMutableBufferPointer { cp in
                        gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: ap.baseAddress!, lda: ta ? m : k,
                             b: bp.baseAddress!, ldb: tb ? k : n, beta: 0.25, c: cp.baseAddress!, ldc: n)
                    }
                }
            }
            #expect(normalizedMSE(actual, expected) < 1e-10)
        }
    }

    struct ConvCase: Sendable, CustomStringConvertible {
        var n = 1, c = 3, h = 9, w = 11, m = 4, groups = 1, k = 3, stride = 1, pad = (0, 0, 0, 0), dilation = 1
        var activation: Activation = .none
        /// Vertical and horizontal stride when they differ (overrides `stride`).
        var strideHW: (Int, Int)? = nil
        var description: String { "n\(n) c\(c) \(h)x\(w) m\(m) g\(groups) k\(k) s\(strideHW.map { "\($0.0)x\($0.1)" } ?? "\(stride)") p\(pad) d\(dilation) \(activation)" }
    }

    static let convCases: [ConvCase] = [
        ConvCase(),
        ConvCase(n: 2, c: 4, h: 8, w: 8, m: 6, k: 1),  // pointwise
        ConvCase(c: 3, h: 15, w: 13, m: 8, k: 7, stride: 2, pad: (3, 3, 3, 3), activation: .relu),
        ConvCase(c: 8, h: 10, w: 10, m: 8, groups: 8, k: 3, stride: 1, pad: (1, 1, 1, 1), activation: .clip(min: 0, max: 6)),  // depthwise
        ConvCase(c: 6, h: 11, w: 9, m: 6, groups: 6, k: 5, stride: 2, pad: (1, 2, 2, 1)),  // depthwise, odd pads (SAME-style)
        ConvCase(c: 4, h: 12, w: 12, m: 8, groups: 2, k: 3, stride: 1, pad: (2, 2, 2, 2), dilation: 2, activation: .hardSwish),
        ConvCase(n: 3, c: 2, h: 5, w: 7, m: 3, k: 2, stride: 3, pad: (0, 1, 1, 0), activation: .sigmoid),
        ConvCase(n: 2, c: 5, h: 20, w: 17, m: 7, k: 3, stride: 1, pad: (1, 1, 1, 1), activation: .relu),  // several column blocks
        ConvCase(n: 1, c: 3, h: 40, w: 37, m: 13, k: 7, stride: 2, pad: (3, 3, 3, 3), activation: .relu),  // ResNet stem
        ConvCase(n: 2, c: 12, h: 9, w: 9, m: 20, k: 1, stride: 2, activation: .hardSwish),  // strided 1×1 (downsampling shortcut)
        ConvCase(n: 1, c: 64, h: 60, w: 50, m: 7, k: 3, stride: 1, pad: (1, 1, 1, 1)),  // unfolded blocks smaller than a plane
        ConvCase(n: 1, c: 16, h: 24, w: 24, m: 16, groups: 16, k: 3, stride: 2, pad: (0, 0, 1, 1)),  // depthwise, SAME stride 2
        ConvCase(n: 2, c: 40, h: 7, w: 7, m: 40, groups: 40, k: 5, stride: 1, pad: (2, 2, 2, 2), activation: .clip(min: 0, max: 6)),  // channels-last depthwise
        ConvCase(c: 3, h: 37, w: 61, m: 3, groups: 3, k: 3, stride: 1, pad: (1, 1, 1, 1)),  // depthwise, wide rows: SIMD interior + tails
        ConvCase(c: 3, h: 29, w: 67, m: 3, groups: 3, k: 5, stride: 2, pad: (1, 2, 2, 1), activation: .relu),  // depthwise stride 2, odd width
        ConvCase(c: 2, h: 21, w: 45, m: 2, groups: 2, k: 3, stride: 1, pad: (2, 2, 2, 2), dilation: 2),  // depthwise dilated
        ConvCase(n: 1, c: 64, h: 14, w: 13, m: 64, groups: 64, k: 3, stride: 2, pad: (0, 0, 1, 1)),  // channels-last, stride 2
        // Vector depthwise: 32-wide blocks, 8-wide blocks and a partial tail in one row; odd left pad at stride 2
        // (even input columns land in the odd phase); an activation the C kernel leaves to Swift.
        ConvCase(n: 2, c: 5, h: 19, w: 83, m: 5, groups: 5, k: 3, stride: 2, pad: (1, 1, 1, 1), activation: .hardSwish),
        ConvCase(c: 4, h: 9, w: 70, m: 4, groups: 4, k: 5, stride: 1, pad: (2, 2, 2, 2), activation: .relu),
        ConvCase(c: 3, h: 12, w: 75, m: 3, groups: 3, k: 5, stride: 2, pad: (2, 1, 2, 1), activation: .clip(min: -1, max: 1)),
        ConvCase(c: 2, h: 6, w: 40, m: 2, groups: 2, k: 7, stride: 1, pad: (3, 3, 3, 3)),  // kernel size without a specialised copy
        // PP-OCR rec halves only the height (stride 2×1) or only the width (1×2).
        ConvCase(c: 3, h: 13, w: 41, m: 3, groups: 3, k: 5, pad: (2, 2, 2, 2), activation: .hardSwish, strideHW: (2, 1)),
        ConvCase(c: 3, h: 12, w: 50, m: 3, groups: 3, k: 3, pad: (1, 1, 1, 1), strideHW: (1, 2)),
        // Interleaved depthwise: a partial last group of lanes (20 = 8 + 8 + 4) in two images, planes
        // narrower than one block of 8, a 7×7 kernel at stride 2, EfficientNet's 5×5 stride 2 on
        // an even plane (SAME pads 1/2), and a plane too large for the interleaved scratch.
        ConvCase(n: 2, c: 20, h: 9, w: 13, m: 20, groups: 20, k: 3, stride: 1, pad: (1, 1, 1, 1), activation: .clip(min: 0, max: 6)),
        ConvCase(c: 11, h: 5, w: 3, m: 11, groups: 11, k: 3, stride: 1, pad: (1, 1, 1, 1), activation: .relu),
        ConvCase(c: 9, h: 17, w: 19, m: 9, groups: 9, k: 7, stride: 2, pad: (3, 3, 3, 3), activation: .hardSwish),
        ConvCase(c: 16, h: 14, w: 14, m: 16, groups: 16, k: 5, stride: 2, pad: (1, 1, 2, 2), activation: .clip(min: 0, max: 6)),
        ConvCase(c: 8, h: 300, w: 300, m: 8, groups: 8, k: 3, stride: 1, pad: (1, 1, 1, 1)),
        // Implicit im2col (PackedConv.indirectConv): a stem-like 5×5 stride 2 with odd pads and a
        // row of 2 blocks + tail, unequal strides (2×1), enough channels that the output rows go
        // in bands (also the 64-channel case above), and a dilated convolution, which stays on
        // im2col.
        ConvCase(n: 2, c: 3, h: 75, w: 77, m: 13, k: 5, stride: 2, pad: (2, 1, 2, 2), activation: .clip(min: 0, max: 6)),
        ConvCase(c: 7, h: 13, w: 21, m: 9, k: 3, pad: (1, 1, 1, 1), activation: .hardSwish, strideHW: (2, 1)),
        ConvCase(c: 40, h: 41, w: 37, m: 10, k: 3, stride: 2, pad: (1, 1, 1, 1), activation: .relu),  // in bands of output rows
        ConvCase(c: 5, h: 16, w: 19, m: 6, k: 3, stride: 1, pad: (2, 2, 2, 2), dilation: 2, activation: .relu),
    ]

    /// A case's geometry, input, weights, bias and reference output.
    private func prepare(_ t: ConvCase) -> (geometry: Conv2DGeometry, input: [Float], weight: [Float], bias: [Float], expected: [Float]) {
        let g = Conv2DGeometry(kernelH: t.k, kernelW: t.k, strideH: t.strideHW?.0 ?? t.stride, strideW: t.strideHW?.1 ?? t.stride,
                               padTop: t.pad.0, padLeft: t.pad.1,
                               padBottom: t.pad.2, padRight: t.pad.3, dilationH: t.dilation, dilationW: t.dilation)
        let input = random(t.n * t.c * t.h * t.w, seed: 5)
        let weight = random(t.m * (t.c / t.groups) * t.k * t.k, seed: 6)
        let bias = random(t.m, seed: 7)
        let expected = referenceConv2d(input: input, batch: t.n, channels: t.c, height: t.h, width: t.w, weight: weight,
                                       outChannels: t.m, bias: bias, groups: t.groups, geometry: g, activation: t.activation)
        return (g, input, weight, bias, expected)
    }

    /// `conv2d` as the inference engine calls it, on whichever kernels this CPU's configuration picks.
    @Test(arguments: convCases)
    func convMatchesReference(_ t: ConvCase) {
        let (g, input, weight, bias, expected) = prepare(t)
        for threads in [1, 2, 3] {
            let actual = output(count: expected.count, input: input, weights: weight, bias: bias) {
                conv2d(input: $0, batch: t.n, channels: t.c, height: t.h, width: t.w, weight: $1, outChannels: t.m, bias: $2,
                       groups: t.groups, geometry: g, activation: t.activation, output: $3, threads: threads)
            }
            #expect(normalizedMSE(actual, expected) < 1e-10, "\(t), \(threads) threads")
        }
    }

    /// The portable kernels alone (SIGHTLINE_ISA=portable, or a CPU without AVX2), whatever this
    /// CPU has: `conv2d` and the portable depthwise kernel.
    @Test(arguments: convCases)
    func portableConvMatchesReference(_ t: ConvCase) {
        let (g, input, weight, bias, expected) = prepare(t)
        KernelConfig.with(InstructionSets.portable) {
            for threads in [1, 3] {
                let actual = output(count: expected.count, input: input, weights: weight, bias: bias) {
                    conv2d(input: $0, batch: t.n, channels: t.c, height: t.h, width: t.w, weight: $1, outChannels: t.m, bias: $2,
                           groups: t.groups, geometry: g, activation: t.activation, output: $3, threads: threads)
                }
                #expect(normalizedMSE(actual, expected) < 1e-10, "\(t), portable, \(threads) threads")
            }
        }
        guard t.groups == t.c && t.c == t.m && t.groups > 1 else { return }
        let portable = output(count: expected.count, input: input, weights: weight, bias: bias) {
            portableDepthwiseConv2d(input: $0, batch: t.n, channels: t.c, height: t.h, width: t.w, weight: $1, bias: $2, geometry: g,
                                    activation: t.activation, output: $3, threads: 2)
        }
        #expect(normalizedMSE(portable, expected) < 1e-10, "\(t), portable depthwise kernel")
    }

    /// Ungrouped cases on the packed-weight kernel (im2col blocks, planes read in place, or the
    /// implicit im2col) as the planner uses it.
    @Test(.enabled(if: InstructionSets.avx2, InstructionSets.needsAVX2), arguments: convCases.filter { $0.groups == 1 })
    func packedConvMatchesReference(_ t: ConvCase) {
        let (g, input, weight, bias, expected) = prepare(t)
        let packed = weight.withUnsafeBufferPointer { PackedConv.pack($0.baseAddress!, outChannels: t.m, depth: t.c * t.k * t.k) }
        for indirect in [true, false] {
            for threads in [1, 2, 3] {
                let actual = packedConv(t, g, input: input, packed: packed, bias: bias, threads: threads, indirect: indirect)
                #expect(normalizedMSE(actual, expected) < 1e-10, "\(t), packed, indirect \(indirect), \(threads) threads")
            }
        }
    }

    /// `PackedConv.conv` on a case, with weights packed by `PackedConv.pack`.
    private func packedConv(_ t: ConvCase, _ g: Conv2DGeometry, input: [Float], packed: [Float], bias: [Float], threads: Int,
                            indirect: Bool, tiles: TileKernel = .preferred) -> [Float] {
        let (oh, ow) = g.outputSize(height: t.h, width: t.w)
        return output(count: t.n * t.m * oh * ow, input: input, weights: packed, bias: bias) {
            PackedConv.conv(input: $0, batch: t.n, channels: t.c, height: t.h, width: t.w, geometry: g, packedWeight: $1,
                            outChannels: t.m, bias: $2, activation: t.activation, output: $3, threads: threads, indirect: indirect,
                            kernel: tiles)
        }
    }

    /// The packed-A GEMM's two tile kernels give the same bits: AVX-512 12×32 tiles (pairs of
    /// weight panels; an odd last panel and filter counts that do not fill it; column tails
    /// under 32 by masked loads) against AVX2 6×16 tiles, on the implicit im2col, im2col blocks
    /// and 1×1 planes read in place; and both against the reference.
    @Test(.enabled(if: InstructionSets.avx512, InstructionSets.needsAVX512), arguments: convCases.filter { $0.groups == 1 })
    func packedConvTilesGiveTheSameBits(_ t: ConvCase) {
        let (g, input, weight, bias, expected) = prepare(t)
        let packed = weight.withUnsafeBufferPointer { PackedConv.pack($0.baseAddress!, outChannels: t.m, depth: t.c * t.k * t.k) }
        for indirect in [true, false] {
            for threads in [1, 3] {
                let results = [TileKernel.avx2, .avx512].map {
                    packedConv(t, g, input: input, packed: packed, bias: bias, threads: threads, indirect: indirect, tiles: $0)
                }
                #expect(results[0] == results[1], "\(t), indirect \(indirect), \(threads) threads")
                #expect(normalizedMSE(results[1], expected) < 1e-10, "\(t), 12×32 tiles, indirect \(indirect), \(threads) threads")
            }
        }
    }

    /// Depthwise cases on both AVX2 kernels, whichever the size rule picks.
    @Test(.enabled(if: InstructionSets.avx2, InstructionSets.needsAVX2),
          arguments: convCases.filter { $0.groups == $0.c && $0.c == $0.m && $0.groups > 1 && $0.dilation == 1 && [1, 2].contains($0.strideHW?.1 ?? $0.stride) })
    func vectorDepthwiseMatchesReference(_ t: ConvCase) {
        let (g, input, weight, bias, expected) = prepare(t)
        #expect(VectorDepthwise.applies(g))
        for threads in [1, 3] {
            let planes = output(count: expected.count, input: input, weights: weight, bias: bias) {
                VectorDepthwise.planeConv(input: $0, batch: t.n, channels: t.c, height: t.h, width: t.w, weight: $1, bias: $2,
                                          geometry: g, activation: t.activation, output: $3, threads: threads)
            }
            #expect(normalizedMSE(planes, expected) < 1e-10, "\(t), plane kernel, \(threads) threads")
            guard let scratch = VectorDepthwise.interleavedScratch(height: t.h, width: t.w, geometry: g) else { continue }
            let interleaved = output(count: expected.count, input: input, weights: weight, bias: bias) {
                VectorDepthwise.interleavedConv(input: $0, batch: t.n, channels: t.c, height: t.h, width: t.w, weight: $1, bias: $2,
                                                geometry: g, activation: t.activation, output: $3, threads: threads, scratch: scratch)
            }
            #expect(normalizedMSE(interleaved, expected) < 1e-10, "\(t), interleaved kernel, \(threads) threads")
        }
    }

    /// Which depthwise kernel a plane gets: the interleaved one while eight padded planes stay
    /// in L2 (EfficientNet's 112² planes), the plane kernel beyond (PP-OCR det's 368²) and for
    /// kernels wider than eight.
    @Test func depthwiseKernelChoice() {
        let same3 = Conv2DGeometry(kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        #expect(VectorDepthwise.interleavedScratch(height: 112, width: 112, geometry: same3) != nil)
        #expect(VectorDepthwise.interleavedScratch(height: 368, width: 368, geometry: same3) == nil)
        #expect(VectorDepthwise.interleavedScratch(height: 7, width: 7, geometry: Conv2DGeometry(kernelH: 9, kernelW: 9)) == nil)
    }

    static let pointwiseCases: [(Int, Int, Int, Int, Activation)] = [
        (1, 16, 12, 49, .none), (2, 7, 13, 196, .relu), (1, 24, 5, 4100, .clip(min: 0, max: 6)), (1, 33, 40, 71, .clip(min: 0, max: 6)),
        (2, 9, 20, 210, .sigmoid), (3, 2000, 20, 49, .relu), (1, 40, 200, 61, .hardSwish), (2, 3, 1, 17, .sigmoid),
        (1, 130, 33, 16, .hardSigmoid(alpha: 0.2, beta: 0.5)),
    ]

    private func pointwiseCase(_ t: (Int, Int, Int, Int, Activation)) -> (input: [Float], weight: [Float], bias: [Float], expected: [Float]) {
        let (n, c, m, spatial, activation) = t
        let input = random(n * c * spatial, seed: 21), weight = random(m * c, seed: 22), bias = random(m, seed: 23)
        let expected = referenceConv2d(input: input, batch: n, channels: c, height: 1, width: spatial, weight: weight, outChannels: m,
                                       bias: bias, groups: 1, geometry: Conv2DGeometry(kernelH: 1, kernelW: 1), activation: activation)
        return (input, weight, bias, expected)
    }

    /// The packed 1×1 kernel against the reference convolution: filter counts that do not fill
    /// the last 6-row panel, plane sizes with and without a partial 16-column block, planes long
    /// enough to be split into column chunks, every activation (fused in C or applied after),
    /// batches, and the column and row-panel ways of splitting across threads.
    @Test(.enabled(if: InstructionSets.avx2, InstructionSets.needsAVX2), arguments: pointwiseCases)
    func pointwiseConvMatchesReference(_ t: (Int, Int, Int, Int, Activation)) throws {
        let (n, c, m, spatial, activation) = t
        let (input, weight, bias, expected) = pointwiseCase(t)
        let packed = weight.withUnsafeBufferPointer { PackedConv.pack($0.baseAddress!, outChannels: m, depth: c) }
        for threads in [1, 2, 3] {
            let actual = packedPointwise(t, input: input, packed: packed, bias: bias, threads: threads)
            #expect(normalizedMSE(actual, expected) < 1e-10, "n\(n) c\(c) m\(m) hw\(spatial) \(activation), \(threads) threads")
        }
    }

    /// A pointwise case on `PackedConv.conv` (a 1×1 convolution over a 1 × spatial plane).
    private func packedPointwise(_ t: (Int, Int, Int, Int, Activation), input: [Float], packed: [Float], bias: [Float], threads: Int,
                                 tiles: TileKernel = .preferred) -> [Float] {
        let (n, c, m, spatial, activation) = t
        return output(count: n * m * spatial, input: input, weights: packed, bias: bias) {
            PackedConv.conv(input: $0, batch: n, channels: c, height: 1, width: spatial, geometry: Conv2DGeometry(kernelH: 1, kernelW: 1),
                            packedWeight: $1, outChannels: m, bias: $2, activation: activation, output: $3, threads: threads, kernel: tiles)
        }
    }

    /// 1×1 planes on both packed-A tile kernels: the same bits (see packedConvTilesGiveTheSameBits).
    @Test(.enabled(if: InstructionSets.avx512, InstructionSets.needsAVX512), arguments: pointwiseCases)
    func pointwiseConvTilesGiveTheSameBits(_ t: (Int, Int, Int, Int, Activation)) throws {
        let (n, c, m, spatial, activation) = t
        let (input, weight, bias, expected) = pointwiseCase(t)
        let packed = weight.withUnsafeBufferPointer { PackedConv.pack($0.baseAddress!, outChannels: m, depth: c) }
        for threads in [1, 2, 3] {
            let results = [TileKernel.avx2, .avx512].map {
                packedPointwise(t, input: input, packed: packed, bias: bias, threads: threads, tiles: $0)
            }
            #expect(results[0] == results[1], "n\(n) c\(c) m\(m) hw\(spatial) \(activation), \(threads) threads")
            #expect(normalizedMSE(results[1], expected) < 1e-10, "n\(n) c\(c) m\(m) hw\(spatial) \(activation), 12×32 tiles")
        }
    }

    /// Transposed (positions as rows, for small planes): any plane size, blocks of row panels
    /// (2000 channels: blocks of ten 7-row panels that span images), threads splitting
    /// positions (196, 210, 4100) or filters; on one tile kernel.
    private func checkTransposedPointwise(_ t: (Int, Int, Int, Int, Activation), kernel: TileKernel) {
        let (n, c, m, spatial, activation) = t
        let (input, weight, bias, expected) = pointwiseCase(t)
        let transposed = weight.withUnsafeBufferPointer { PackedConv.packTransposed($0.baseAddress!, outChannels: m, channels: c) }
        for threads in [1, 2, 3] {
            let actual = output(count: expected.count, input: input, weights: transposed, bias: bias) {
                PackedConv.convTransposed(input: $0, batch: n, channels: c, spatial: spatial, packedWeight: $1, outChannels: m, bias: $2,
                                          activation: activation, output: $3, threads: threads, kernel: kernel)
            }
            #expect(normalizedMSE(actual, expected) < 1e-10, "transposed \(kernel) n\(n) c\(c) m\(m) hw\(spatial) \(activation), \(threads) threads")
        }
    }

    @Test(.enabled(if: InstructionSets.avx2, InstructionSets.needsAVX2), arguments: pointwiseCases)
    func transposedPointwiseOnAVX2Tiles(_ t: (Int, Int, Int, Int, Activation)) {
        checkTransposedPointwise(t, kernel: .avx2)
    }

    @Test(.enabled(if: InstructionSets.avx512, InstructionSets.needsAVX512), arguments: pointwiseCases)
    func transposedPointwiseOnAVX512Tiles(_ t: (Int, Int, Int, Int, Activation)) {
        checkTransposedPointwise(t, kernel: .avx512)
    }

    /// Which 1×1 convolutions run transposed: 7×7 on both tile kernels; 14×14 only on 7-row
    /// tiles; never a plane that 16-column panels fill (48) or one as large as 28×28.
    @Test func transposedPointwiseChoice() {
        #expect(PackedConv.prefersTransposed(spatial: 49, kernel: .avx2) && !PackedConv.prefersTransposed(spatial: 196, kernel: .avx2))
        #expect(!PackedConv.prefersTransposed(spatial: 48, kernel: .avx2))
        #expect(PackedConv.prefersTransposed(spatial: 49, kernel: .avx512) && PackedConv.prefersTransposed(spatial: 196, kernel: .avx512))
        #expect(!PackedConv.prefersTransposed(spatial: 48, kernel: .avx512) && !PackedConv.prefersTransposed(spatial: 784, kernel: .avx512))
    }

    static let linearCases: [(Int, Int, Int, Activation)] = [
        (1, 8, 16, .none), (32, 384, 1536, .none), (7, 33, 21, .relu), (61, 20, 5, .hardSwish), (130, 17, 40, .sigmoid),
        (71, 9, 3, .clip(min: 0, max: 6)), (64, 48, 40, .geluErf),
        // A last tile of one or two rows of A read in place, an odd number of panels, a partial one.
        (14, 40, 40, .relu), (68, 24, 40, .none), (8, 16, 16, .none),
    ]

    /// The packed linear layer against the reference GEMM, on one tile kernel: output widths
    /// with a partial 16-column panel, row counts across the blocks of ten 6- or 7-row panels
    /// and with a last one or two rows, activations.
    private func checkPackedLinear(_ t: (Int, Int, Int, Activation), kernel: TileKernel) throws {
        let (rows, inputs, outputs, activation) = t
        let x = random(rows * inputs, seed: 31), w = random(outputs * inputs, seed: 32), b = random(outputs, seed: 33)
        let linear = try #require(PackedLinear(weight: w, outputs: outputs, inputs: inputs, bias: b))
        var expected = [Float](repeating: 0, count: rows * outputs)
        for r in 0..<rows { for o in 0..<outputs { expected[r * outputs + o] = b[o] } }
        referenceGemm(transposeA: false, transposeB: true, m: rows, n: outputs, k: inputs, a: x, lda: inputs, b: w, ldb: inputs,
                      beta: 1, c: &expected, ldc: outputs)
        for i in expected.indices { expected[i] = activation.apply(expected[i]) }
        for threads in [1, 2, 3] {
            var y = [Float](repeating: .nan, count: rows * outputs)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer {
                    linear.apply(xp.baseAddress!, rows: rows, into: $0.baseAddress!, activation: activation, threads: threads, kernel: kernel)
                }
            }
            #expect(normalizedMSE(y, expected) < 1e-10, "\(t), \(kernel), \(threads) threads")
        }
        #expect(PackedLinear(weight: w, outputs: outputs + 1, inputs: inputs, bias: b) == nil)
    }

    @Test(.enabled(if: InstructionSets.avx2, InstructionSets.needsAVX2), arguments: linearCases)
    func packedLinearOnAVX2Tiles(_ t: (Int, Int, Int, Activation)) throws {
        try checkPackedLinear(t, kernel: .avx2)
    }

    @Test(.enabled(if: InstructionSets.avx512, InstructionSets.needsAVX512), arguments: linearCases)
    func packedLinearOnAVX512Tiles(_ t: (Int, Int, Int, Activation)) throws {
        try checkPackedLinear(t, kernel: .avx512)
    }

    /// GELU as the tiles apply it in registers, value by value against libm's erf: an identity
    /// layer over −9 … 9 (the far tails: e^(−x²/2) below float's range there).
    private func checkFusedGelu(kernel: TileKernel) throws {
        let width = 16
        var identity = [Float](repeating: 0, count: width * width)
        for i in 0..<width { identity[i * width + i] = 1 }
        let linear = try #require(PackedLinear(weight: identity, outputs: width, inputs: width, bias: nil))
        let x = (0..<(4608)).map { Float($0 - 2304) / 256 }  // −9 … 9 in steps of 1/256, 288 rows of 16
        var expected = x
        expected.withUnsafeMutableBufferPointer { referenceGeluErf($0.baseAddress!, count: $0.count) }
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { linear.apply(xp.baseAddress!, rows: x.count / width, into: $0.baseAddress!, activation: .geluErf, kernel: kernel) }
        }
        let worst = zip(y, expected).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .nan
        #expect(worst <= 2e-6, "\(kernel): worst error \(worst)")
        #expect(abs(y[0]) < 1e-12)  // GELU(−9) ≈ −1e−18
    }

    @Test(.enabled(if: InstructionSets.avx2, InstructionSets.needsAVX2))
    func fusedGeluOnAVX2Tiles() throws { try checkFusedGelu(kernel: .avx2) }

    @Test(.enabled(if: InstructionSets.avx512, InstructionSets.needsAVX512))
    func fusedGeluOnAVX512Tiles() throws { try checkFusedGelu(kernel: .avx512) }

    /// Without AVX2 there is no packed linear layer: callers keep their BLAS path.
    @Test func noPackedLinearOnThePortablePath() {
        KernelConfig.with(InstructionSets.portable) {
            #expect(PackedLinear(weight: random(12, seed: 1), outputs: 3, inputs: 4, bias: nil) == nil)
            #expect(!PackedConv.applies(groups: 1))
        }
    }

    @Test func samePaddingMatchesTensorFlow() {
        // TF SAME: out = ceil(in / stride); the odd pixel of padding goes at the end.
        #expect(Conv2DGeometry.samePadding(input: 224, kernel: 3, stride: 2, dilation: 1) == (0, 1))
        #expect(Conv2DGeometry.samePadding(input: 112, kernel: 5, stride: 1, dilation: 1) == (2, 2))
        #expect(Conv2DGeometry.samePadding(input: 7, kernel: 3, stride: 2, dilation: 1) == (1, 1))
    }

    @Test func broadcastMatchesNaiveIndexing() {
        let aShape = [2, 1, 3], bShape = [4, 1]
        let a = random(6, seed: 9), b = random(4, seed: 10)
        var out: [Float] = []
        broadcastBinary(.sub, a: a, aShape: aShape, b: b, bShape: bShape, out: &out, outShape: [2, 4, 3])
        for i in 0..<2 { for j in 0..<4 { for k in 0..<3 {
            #expect(out[(i * 4 + j) * 3 + k] == a[i * 3 + k] - b[j])
        } } }
        #expect(broadcastShape([2, 3], [4, 3]) == nil)
    }

    /// Every fast path (equal shapes, scalar, per-channel run, repeated row) and the general walk
    /// agree with index arithmetic, with the small operand on either side.
    @Test(arguments: [([2, 5, 3], [3]), ([2, 5, 3], [5, 3]), ([2, 5, 3], [1, 1, 3]), ([2, 5, 4, 3], [5, 1, 1]),
                      ([2, 5, 3], [2, 5, 3]), ([2, 5, 3], [1]), ([2, 5, 3], [2, 1, 3])])
    func broadcastFastPathsMatchIndexing(_ shapes: ([Int], [Int])) {
        let (fullShape, smallShape) = shapes
        let full = random(fullShape.reduce(1, *), seed: 11), small = random(smallShape.reduce(1, *), seed: 12)
        let strides = { (shape: [Int]) -> [Int] in
            var st = [Int](repeating: 1, count: shape.count)
            for d in stride(from: shape.count - 2, through: 0, by: -1) { st[d] = st[d + 1] * shape[d + 1] }
            return st
        }
        let padded = [Int](repeating: 1, count: fullShape.count - smallShape.count) + smallShape
        let fullStrides = strides(fullShape), smallStrides = strides(padded)
        func smallIndex(_ flat: Int) -> Int {
            var index = 0
            for d in 0..<fullShape.count where padded[d] != 1 { index += (flat / fullStrides[d]) % fullShape[d] * smallStrides[d] }
            return index
        }
        var ab: [Float] = [], ba: [Float] = []
        broadcastBinary(.sub, a: full, aShape: fullShape, b: small, bShape: smallShape, out: &ab, outShape: fullShape)
        broadcastBinary(.sub, a: small, aShape: smallShape, b: full, bShape: fullShape, out: &ba, outShape: fullShape)
        for i in full.indices {
            #expect(ab[i] == full[i] - small[smallIndex(i)], "\(shapes) a−b at \(i)")
            #expect(ba[i] == small[smallIndex(i)] - full[i], "\(shapes) b−a at \(i)")
        }
    }

    @Test func transposeAndSoftmax() {
        let data = (0..<24).map(Float.init)
        let (t, shape) = transpose(data, shape: [2, 3, 4], perm: [2, 0, 1])
        #expect(shape == [4, 2, 3])
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { #expect(t[(k * 2 + i) * 3 + j] == data[(i * 3 + j) * 4 + k]) } } }
        var logits: [Float] = [1, 2, 3, 1000, 1000, 1000]
        softmax(&logits, rows: 2, axisSize: 3)
        #expect(abs(logits[0] + logits[1] + logits[2] - 1) < 1e-6)
        #expect(abs(logits[3] - 1 / 3) < 1e-6)
    }

    @Test func poolingMaxAndAverage() {
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]  // 1×1×3×3
        let g = Conv2DGeometry(kernelH: 2, kernelW: 2, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1)
        var maxOut = [Float](repeating: 0, count: 9), avgOut = [Float](repeating: 0, count: 9)
        x.withUnsafeBufferPointer { src in
            maxOut.withUnsafeMutableBufferPointer { pool2d(input: src.baseAddress!, batch: 1, channels: 1, height: 3, width: 3, geometry: g, isMax: true, output: $0.baseAddress!) }
            avgOut.withUnsafeMutableBufferPointer { pool2d(input: src.baseAddress!, batch: 1, channels: 1, height: 3, width: 3, geometry: g, isMax: false, output: $0.baseAddress!) }
        }
        #expect(maxOut == [5, 6, 6, 8, 9, 9, 8, 9, 9])
        #expect(avgOut == [3, 4, 4.5, 6, 7, 7.5, 7.5, 8.5, 9])
    }

    /// Max pooling (the vector kernel where it applies) against the window definition, on
    /// negative values so a padded cell counted as 0 would show: ResNet's 3×3/2, odd pads, wide
    /// rows with partial vectors, 2×2/2, stride 1, a stride of 3 (the scalar paths).
    @Test(arguments: [(3, 2, (1, 1, 1, 1), 2, 37, 45), (3, 2, (0, 0, 1, 1), 3, 20, 21), (2, 2, (0, 0, 0, 0), 1, 16, 40),
                      (3, 1, (1, 1, 1, 1), 2, 9, 70), (3, 3, (1, 0, 1, 2), 1, 13, 17), (5, 2, (2, 2, 2, 2), 1, 11, 33)])
    func maxPoolingMatchesTheWindowDefinition(_ t: (Int, Int, (Int, Int, Int, Int), Int, Int, Int)) {
        let (k, stride, pad, planes, h, w) = t
        let g = Conv2DGeometry(kernelH: k, kernelW: k, strideH: stride, strideW: stride, padTop: pad.0, padLeft: pad.1,
                               padBottom: pad.2, padRight: pad.3)
        let (oh, ow) = g.outputSize(height: h, width: w)
        let x = random(planes * h * w, seed: 41).map { -1 - abs($0) }
        var want = [Float](repeating: 0, count: planes * oh * ow)
        for p in 0..<planes { for oy in 0..<oh { for ox in 0..<ow {
            var best = -Float.infinity
            for ky in 0..<k { for kx in 0..<k {
                let iy = oy * stride - pad.0 + ky, ix = ox * stride - pad.1 + kx
                if iy >= 0 && iy < h && ix >= 0 && ix < w { best = max(best, x[(p * h + iy) * w + ix]) }
            } }
            want[(p * oh + oy) * ow + ox] = best
        } } }
        var got = [Float](repeating: .nan, count: want.count)
        x.withUnsafeBufferPointer { src in
            got.withUnsafeMutableBufferPointer {
                pool2d(input: src.baseAddress!, batch: 1, channels: planes, height: h, width: w, geometry: g, isMax: true, output: $0.baseAddress!)
            }
        }
        #expect(got == want, "\(t)")
    }
}

@Suite struct ConvTransposeAndResizeTests {
    /// Kernel 3 overlaps its taps (the scatter-add); kernel = stride tiles the output (the
    /// direct placement: 2×2 stride 2 as DB text heads use, with widths past one vector).
    @Test(arguments: [(3, 1, 1, 0, 0), (3, 2, 1, 1, 0), (3, 2, 2, 0, 1), (3, 3, 1, 1, 2),
                      (2, 2, 1, 0, 0), (2, 2, 2, 0, 0), (3, 3, 1, 0, 0), (1, 1, 1, 0, 0)])
    func convTransposeMatchesReference(kernel k: Int, stride: Int, groups: Int, pad: Int, dilation: Int) {
        let d = max(dilation, 1)
        let g = Conv2DGeometry(kernelH: k, kernelW: k, strideH: stride, strideW: stride, padTop: pad, padLeft: pad, padBottom: pad, padRight: pad,
                               dilationH: d, dilationW: d)
        for (name, config) in Self.kernelConfigs {
            KernelConfig.with(config) {
                #expect(convTransposeError(batch: 2, channels: 4, height: 5, width: k == 2 ? 19 : 6, outChannels: 6, groups: groups,
                                           geometry: g) < 1e-10, "\(name)")
            }
        }
    }

    /// The columns' GEMM on each path this CPU has: the packed-A tiles of the configuration
    /// (AVX-512 12×32 or AVX2 6×16), AVX2's where AVX-512 is there too, and OpenBLAS (portable).
    static let kernelConfigs: [(String, KernelConfig)] = [("as configured", KernelConfig.process)]
        + (InstructionSets.avx512 ? [("avx2", KernelConfig.process.capped(at: .avx2))] : [])
        + [("portable", InstructionSets.portable)]

    /// The tiling path a band of input rows at a time (24 output channels × 4 taps over 184
    /// columns: bands of 7 rows, so 20 rows take three, the last short), with a fused
    /// activation applied as rows are placed; and the scatter-add path with one, after.
    @Test(arguments: [(2, Activation.relu), (2, .sigmoid), (3, .relu)])
    func convTransposeBandsAndActivation(kernel k: Int, activation: Activation) {
        let g = Conv2DGeometry(kernelH: k, kernelW: k, strideH: 2, strideW: 2)
        for (name, config) in Self.kernelConfigs {
            KernelConfig.with(config) {
                #expect(convTransposeError(batch: 1, channels: 3, height: 20, width: 184, outChannels: 24, groups: 1, geometry: g,
                                           biasOffset: -1, activation: activation) < 1e-10, "kernel \(k) \(activation), \(name)")
            }
        }
    }

    /// Normalised error of `convTranspose2d` against the reference (then `activation`).
    private func convTransposeError(batch n: Int, channels c: Int, height h: Int, width w: Int, outChannels m: Int, groups: Int,
                                    geometry g: Conv2DGeometry, biasOffset: Float = 0, activation: Activation = .none) -> Double {
        let oh = (h - 1) * g.strideH - g.padTop - g.padBottom + g.dilationH * (g.kernelH - 1) + 1
        let ow = (w - 1) * g.strideW - g.padLeft - g.padRight + g.dilationW * (g.kernelW - 1) + 1
        let input = (0..<(n * c * h * w)).map { Float(($0 * 31) % 17) / 17 - 0.5 }
        let weight = (0..<(c * (m / groups) * g.kernelH * g.kernelW)).map { Float(($0 * 13) % 23) / 23 - 0.5 }
        let bias = (0..<m).map { Float($0) / 10 + biasOffset }
        let expected = referenceConvTranspose2d(input: input, batch: n, channels: c, height: h, width: w, weight: weight, outChannels: m,
                                                bias: bias, groups: groups, geometry: g, outHeight: oh, outWidth: ow).map { activation.apply($0) }
        var actual = [Float](repeating: .nan, count: expected.count)
        input.withUnsafeBufferPointer { i in
            weight.withUnsafeBufferPointer { wp in
                bias.withUnsafeBufferPointer { b in
                    actual.withUnsafeMutableBufferPointer { o in
                        convTranspose2d(input: i.baseAddress!, batch: n, channels: c, height: h, width: w, weight: wp.baseAddress!,
                                        outChannels: m, bias: b.baseAddress!, groups: groups, geometry: g, outHeight: oh, outWidth: ow,
                                        output: o.baseAddress!, activation: activation)
                    }
                }
            }
        }
        return normalizedMSE(actual, expected)
    }

    /// The separable resize gives the reference's bits: down (OCR's 720p → 960×544 shape,
    /// scaled), up, by more than 2×, a single row or column, one and three channels.
    static let resizeCases: [(Int, Int, Int, Int, Int)] = [(40, 23, 3, 30, 17), (13, 7, 3, 29, 16), (64, 48, 1, 10, 7), (1, 9, 3, 4, 5),
                                                          (9, 1, 3, 5, 4), (5, 5, 4, 5, 5), (7, 6, 3, 1, 1)]
    @Test(arguments: resizeCases)
    func separableResizeIsBitIdenticalToTheReference(width: Int, height: Int, channels: Int, toWidth: Int, toHeight: Int) {
        let source: [UInt8] = (0..<(width * height * channels)).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: i * 37 + i / 7) }
        var expected = [Float](repeating: .nan, count: toWidth * toHeight * channels), actual = expected
        source.withUnsafeBufferPointer { src in
            expected.withUnsafeMutableBufferPointer {
                referenceResizeBilinear(src.baseAddress!, width: width, height: height, channels: channels, toWidth: toWidth, toHeight: toHeight, output: $0.baseAddress!)
            }
            actual.withUnsafeMutableBufferPointer {
                resizeBilinear(src.baseAddress!, width: width, height: height, channels: channels, toWidth: toWidth, toHeight: toHeight, output: $0.baseAddress!)
            }
        }
        #expect(actual.map(\.bitPattern) == expected.map(\.bitPattern))
    }
}

@Suite struct BroadcastFastPathTests {
    @Test(arguments: [
        ([2, 3, 4, 5], [1, 3, 1, 1]), ([2, 3, 4, 5], [3, 1, 1]), ([2, 3, 4, 5], [1]), ([1, 3, 1, 1], [2, 3, 4, 5]),
        ([2, 3, 4, 5], [5]), ([2, 3, 4, 5], [2, 3, 1, 1]), ([2, 3, 4, 5], [4, 5]), ([2, 3, 4, 5], [2, 1, 4, 1]),
    ])
    func fastPathsMatchTheIndexWalk(aShape: [Int], bShape: [Int]) throws {
        let outShape = try #require(broadcastShape(aShape, bShape))
        let a = (0..<aShape.reduce(1, *)).map { Float($0 % 13) - 6 }
        let b = (0..<bShape.reduce(1, *)).map { Float($0 % 7) + 0.5 }
        for op in [BinaryOp.add, .sub, .mul, .div, .max, .min] {
            var fast: [Float] = []
            broadcastBinary(op, a: a, aShape: aShape, b: b, bShape: bShape, out: &fast, outShape: outShape)
            var slow = [Float](repeating: 0, count: outShape.reduce(1, *))
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    slow.withUnsafeMutableBufferPointer { generalBroadcast(op, pa.baseAddress!, aShape, pb.baseAddress!, bShape, $0.baseAddress!, outShape) }
                }
            }
            #expect(normalizedMSE(fast, slow) < 1e-12, "\(op) \(aShape) \(bShape)")
        }
    }
}

/// The sightline process caps glibc's malloc arenas and fixes its mmap and trim thresholds at
/// start (AllocatorTuning says why), unless the user chose them in the environment.
@Suite struct AllocatorTuningTests {
    @Test func theUsersMallocSettingsWin() {
        #expect(AllocatorTuning.arenaLimit(environment: [:]) == AllocatorTuning.arenas)
        #expect(AllocatorTuning.arenaLimit(environment: ["MALLOC_ARENA_MAX": "4"]) == nil)
        #expect(AllocatorTuning.thresholds(environment: [:])?.mmap == AllocatorTuning.mmapThreshold)
        #expect(AllocatorTuning.thresholds(environment: ["MALLOC_TRIM_THRESHOLD_": "131072"]) == nil)
        #expect(AllocatorTuning.thresholds(environment: ["MALLOC_MMAP_THRESHOLD_": "131072"]) == nil)
        let theirs = ["MALLOC_ARENA_MAX": "4", "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"]
        #expect(AllocatorTuning.apply(environment: theirs) == false)
    }

    @Test func glibcTakesTheLimit() {
        #if canImport(Glibc)
        #expect(AllocatorTuning.apply(environment: [:]))
        #endif
    }

    /// What the thresholds are for: three 16 MB maps allocated, filled and freed per image (one
    /// model, image after image) land on pages already faulted in. With glibc's defaults every
    /// image faults all 12 k pages again: the first image's maps are mmapped, which raises the
    /// mmap threshold to 16 MB and the trim threshold to 32 MB, and the 48 MB they leave free at
    /// the top of the heap is given back on every later image.
    ///
    /// Measured in a forked child, where no other test's thread shares the arena (in this
    /// process they took the freed maps under load). The child only allocates, fills, frees and
    /// counts, and reports its faults / 64 as its exit status (255: no thread reached the main
    /// arena).
    ///
    /// The images run on glibc's main arena, as every thread of the sightline process does: it
    /// caps the arenas at one before it starts a thread. The test process started threads first,
    /// so the forking thread may own a per-thread arena, whose 64 MB heaps glibc unmaps as soon
    /// as one is empty, whatever the trim threshold (a clean-clone CI run faulted one 16 MB map
    /// per image that way). `onMainArena` finds a thread that is on it.
    @Test func freedMapsAreReusedWithoutPageFaults() {
        #if canImport(Glibc)
        #expect(AllocatorTuning.apply(environment: [:]))
        let bytes = 16 << 20, pages = 3 * bytes / 4096
        let child = fork()
        if child == 0 {
            func image() {
                let a = malloc(bytes), b = malloc(bytes), c = malloc(bytes)
                if let a { memset(a, 1, bytes) }
                if let b { memset(b, 1, bytes) }
                if let c { memset(c, 1, bytes) }
                free(a)
                free(b)
                free(c)
            }
            let faults = onMainArena(tries: 64) {
                var usage = rusage()
                image()
                image()
                getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
                let before = usage.ru_minflt
                image()
                getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
                return usage.ru_minflt - before
            }
            _exit(Int32(faults.map { min(254, $0 / 64) } ?? 255))
        }
        #expect(child > 0, "fork failed")
        guard child > 0 else { return }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0, sixtyFourths = Int((status >> 8) & 0xff)
        #expect(exited && sixtyFourths != 255, "no thread of the child reached glibc's main arena (status \(status))")
        #expect(exited && sixtyFourths * 64 < pages / 4, "about \(sixtyFourths * 64) faults for an image of \(pages) pages (status \(status))")
        #endif
    }
}

#if canImport(Glibc)
/// Runs `body` on a thread attached to glibc's main arena, or returns nil after `tries` threads.
/// A thread is given an arena at its first malloc: in a forked child, the next one on the free
/// list. Each thread that is not on the main arena stays alive (joined on its successor) so the
/// next thread takes a different arena. Main-arena memory below the mmap threshold comes from
/// brk, so it lies below the program break; per-thread heaps are mmapped above it.
private func onMainArena(tries: Int, _ body: @escaping () -> Int) -> Int? {
    let probe = malloc(64 << 10)  // below any mmap threshold (glibc's own starts at 128 KB)
    defer { free(probe) }
    if let probe, UInt(bitPattern: probe) < UInt(bitPattern: sbrk(0)) { return body() }
    guard tries > 0 else { return nil }
    final class Successor: @unchecked Sendable {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
    var result: Int?
    let successor = Unmanaged.passRetained(Successor { result = onMainArena(tries: tries - 1, body) })
    var thread = pthread_t()
    guard pthread_create(&thread, nil, { context in
        context.map { Unmanaged<Successor>.fromOpaque($0).takeRetainedValue().run() }
        return nil
    }, successor.toOpaque()) == 0 else {
        successor.release()
        return nil
    }
    pthread_join(thread, nil)
    return result
}
#endif
