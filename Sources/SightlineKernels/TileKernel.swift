import CSightlineKernels
import Foundation

/// The microkernel of the GEMMs whose right operand is packed (`PackedLinear`, the transposed
/// 1×1 convolution): AVX2 6×16 tiles, or AVX-512 7×16 tiles where the CPU has AVX-512 F and VL
/// (see gemm512.c for why they are faster). Both compute the same products; tests run each.
/// `SIGHTLINE_ISA=avx2` keeps AVX2 (A/B runs).
public enum TileKernel: Sendable, CaseIterable {
    case avx2, avx512

    /// The tile of the configuration in effect (`KernelConfig`).
    public static var preferred: TileKernel { KernelConfig.current.hasAVX512 ? .avx512 : .avx2 }

    /// Whether this CPU can run it.
    public var available: Bool { KernelConfig.detected >= (self == .avx2 ? .avx2 : .avx512) }

    /// Rows of A per tile (positions, for a transposed convolution).
    public var rows: Int { self == .avx2 ? 6 : 7 }

    /// Floats of scratch per unit of depth (A is packed in blocks of ten row panels).
    static let scratchPerDepth = 70
}
