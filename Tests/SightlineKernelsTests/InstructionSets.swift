import Testing
import SightlineKernels

/// What the kernels may use in this test run: the CPU's instruction sets, capped by
/// SIGHTLINE_ISA. Tests of a vector kernel are enabled by these, so on a CPU without it they
/// are reported as skipped with the reason, never passed without running.
enum InstructionSets {
    static let avx2 = KernelConfig.process.hasAVX2
    static let avx512 = KernelConfig.process.hasAVX512

    static let needsAVX2: Comment = "needs AVX2 and FMA: this CPU lacks them, or SIGHTLINE_ISA leaves them out"
    static let needsAVX512: Comment = "needs AVX-512 F and VL: this CPU lacks them, or SIGHTLINE_ISA leaves them out"

    /// The portable kernels only, whatever the CPU has.
    static let portable = KernelConfig.process.capped(at: .portable)
}
