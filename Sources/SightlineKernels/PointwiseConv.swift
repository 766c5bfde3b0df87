import CSightlineKernels
import Dispatch

/// 1×1, stride-1, unpadded, ungrouped convolutions (most of a MobileNet/EfficientNet's work) as
/// one GEMM per image, out[M × HW] = W[M × C] · x[C × HW], on the AVX2 kernel
/// `sl_gemm_packed_a`: the weights are packed once into 6-row panels when the plan is built,
/// the input planes are read in place (no per-call packing, which OpenBLAS does for both sides
/// on every call), and bias and activation are applied while the results are in registers.
public enum PointwiseConv {
    public static func applies(channels: Int, groups: Int, geometry g: Conv2DGeometry) -> Bool {
        groups == 1 && g.kernelH == 1 && g.kernelW == 1 && g.strideH == 1 && g.strideW == 1
            && g.padTop == 0 && g.padLeft == 0 && g.padBottom == 0 && g.padRight == 0 && sl_has_avx2_fma()
    }

    /// Weights [M × C] as 6-row panels.
    public static func pack(_ weight: UnsafePointer<Float>, outChannels m: Int, channels c: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: (m + 5) / 6 * 6 * c) { buffer, count in
            sl_pack_rows6(weight, m, c, buffer.baseAddress!)
            count = (m + 5) / 6 * 6 * c
        }
    }

    public static func conv(
        input: UnsafePointer<Float>, batch: Int, channels: Int, spatial: Int, packedWeight: UnsafePointer<Float>,
        outChannels m: Int, bias: UnsafePointer<Float>?, activation: Activation, output: UnsafeMutablePointer<Float>,
        threads: Int = 1
    ) {
        let fused = VectorDepthwise.code(activation)
        let panels = (m + 5) / 6
        let shared = SharedBuffers(input: input, weight: packedWeight, bias: bias, output: output)
        // Work items: column blocks when the planes are long, row panels when they are short
        // (late layers: 7×7 positions, over a thousand filters).
        let splitColumns = spatial >= 64 * threads
        let parts = threads <= 1 ? 1 : splitColumns ? min(threads, spatial / 64) : min(threads, panels)
        let work = { @Sendable (part: Int) in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: channels * 16)
            defer { scratch.deallocate() }
            let (p0, p1) = splitColumns ? (part * spatial / parts, (part + 1) * spatial / parts) : (0, spatial)
            let (q0, q1) = splitColumns ? (0, panels) : (part * panels / parts, (part + 1) * panels / parts)
            guard p0 < p1, q0 < q1 else { return }
            for n in 0..<batch {
                let x = shared.input + n * channels * spatial + p0
                let y = shared.output + n * m * spatial + p0
                sl_gemm_packed_a(m, channels, shared.weight, q0, q1, x, spatial, p1 - p0, y, spatial, shared.bias,
                                 fused?.0 ?? Int32(SL_ACT_NONE), fused?.1 ?? 0, fused?.2 ?? 0, scratch)
                if fused == nil {
                    for row in (q0 * 6)..<min(m, q1 * 6) { activation.apply(y + row * spatial, count: p1 - p0) }
                }
            }
        }
        if parts > 1 { DispatchQueue.concurrentPerform(iterations: parts, execute: work) } else { work(0) }
    }
}
