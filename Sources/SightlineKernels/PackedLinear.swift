import CSightlineKernels
import Dispatch

/// y = x · Wᵀ + b for a linear layer with weight W [outputs × inputs] (PyTorch's layout),
/// on the packed-B GEMM tiles (`TileKernel`) with W packed once into 16-column panels. For the
/// few rows of a sentence batch OpenBLAS spends as long re-packing W on every call as it does
/// multiplying (measured on MiniLM: `sgemm_incopy` 18% of the run next to 24% in the kernel).
public struct PackedLinear: Sendable {
    public let inputs: Int, outputs: Int
    let panels: [Float]
    let bias: [Float]?

    /// nil when the CPU has no AVX2/FMA (callers keep their BLAS path) or the sizes disagree.
    public init?(weight: [Float], outputs: Int, inputs: Int, bias: [Float]?) {
        guard KernelConfig.current.hasAVX2, weight.count == outputs * inputs, bias.map({ $0.count == outputs }) ?? true else { return nil }
        self.inputs = inputs
        self.outputs = outputs
        self.bias = bias
        let count = (outputs + 15) / 16 * 16 * inputs
        panels = [Float](unsafeUninitializedCapacity: count) { buffer, n in
            weight.withUnsafeBufferPointer { sl_pack_linear16($0.baseAddress!, outputs, inputs, buffer.baseAddress!) }
            n = count
        }
    }

    /// x [rows × inputs] → y [rows × outputs]; column panels split over `threads`.
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, activation: Activation = .none,
                      threads: Int = 1, kernel tiles: TileKernel = .preferred) {
        let fused = activation.kernelActivation
        let kernel = fused ?? .none  // nil: each part applies it over its columns
        let columnPanels = (outputs + 15) / 16
        let parts = max(1, min(threads, columnPanels))
        panels.withUnsafeBufferPointer { b in
            withOptionalPointer(bias) { bias in
                let shared = SharedBuffers(input: x, weight: b.baseAddress!, bias: bias, output: y)
                let work = { @Sendable (part: Int) in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: TileKernel.scratchPerDepth * inputs)
                    defer { scratch.deallocate() }
                    let q0 = part * columnPanels / parts, q1 = (part + 1) * columnPanels / parts
                    if tiles == .avx512 {
                        sl_gemm_packed_b_7x16(rows, inputs, shared.input, inputs, shared.weight, outputs, q0, q1, shared.output, outputs,
                                              shared.bias, kernel.code, kernel.lo, kernel.hi, scratch)
                    } else {
                        sl_gemm_packed_b_6x16(rows, inputs, shared.input, inputs, shared.weight, outputs, q0, q1, shared.output, outputs,
                                              shared.bias, kernel.code, kernel.lo, kernel.hi, scratch)
                    }
                    if fused == nil {
                        // Each part activates its own columns, while they are in its cache: applied
                        // over the whole output afterwards, an unfused activation runs on one core
                        // (MiniLM's GELU, before it was fused: 10 % of its 2-thread time at batch 8).
                        let c0 = q0 * 16, c1 = min(q1 * 16, outputs)
                        guard c1 > c0 else { return }
                        for row in 0..<rows { activation.apply(shared.output + row * outputs + c0, count: c1 - c0) }
                    }
                }
                if parts > 1 { KernelPool.shared.run(parts, work) } else { work(0) }
            }
        }
    }
}
