import CSightlineKernels
import Foundation

/// The microkernel of the GEMMs whose right operand is packed (`PackedLinear`, the transposed
/// 1×1 convolution): AVX2 6×16 tiles, or AVX-512 7×16 tiles where the CPU has AVX-512 F and VL
/// (see gemm512.c for why they are faster). Both compute the same products; tests run each.
/// `SIGHTLINE_NO_AVX512=1` keeps AVX2 (A/B runs).
public enum TileKernel: Sendable, CaseIterable {
    case avx2, avx512

    public static let preferred: TileKernel = sl_has_avx512() && getenv("SIGHTLINE_NO_AVX512") == nil ? .avx512 : .avx2

    /// Whether this CPU can run it.
    public var available: Bool { self == .avx2 ? sl_has_avx2_fma() : sl_has_avx512() }

    /// Rows of A per tile (positions, for a transposed convolution).
    public var rows: Int { self == .avx2 ? 6 : 7 }

    /// Floats of scratch per unit of depth (A is packed in blocks of ten row panels).
    static let scratchPerDepth = 70
}
