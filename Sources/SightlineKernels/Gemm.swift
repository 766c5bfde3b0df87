import COpenBLAS

/// C[M×N] = alpha · op(A) · op(B) + beta · C, row-major. op(A) is M×K (A stored K×M when
/// transposed), op(B) is K×N (B stored N×K when transposed). Runs on OpenBLAS (`cblas_sgemm`).
public func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The reference twin of `gemm`: the textbook triple loop, accumulating in Double.
public func referenceGemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: [Float], lda: Int, b: [Float], ldb: Int, beta: Float = 0, c: inout [Float], ldc: Int
) {
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                sum += Double(av) * Double(bv)
            }
            c[i * ldc + j] = Float(Double(alpha) * sum + Double(beta) * Double(c[i * ldc + j]))
        }
    }
}

/// Who owns the cores: OpenBLAS's thread count for GEMM. Set once per process by the model
/// runtime (1 when the graph runs several models side by side, the core count for one model).
public enum KernelThreads {
    public static func setBLASThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// Sightline owns the cores (measured: issue 4's note): OpenBLAS runs single-threaded in
    /// the calling thread, and parallelism comes from Dispatch and from the graph running
    /// nodes side by side. Without this, every node's GEMM starts OpenBLAS's own threads, and
    /// with several nodes busy they spin in sched_yield waiting for each other (a batch run
    /// spent 45% of its time in the kernel that way). Called by every model load; a benchmark
    /// may still set another count afterwards.
    public static func claimCores() {
        _ = claimOnce
    }

    private static let claimOnce: Void = { openblas_set_num_threads(1) }()

    public static var blasThreads: Int { Int(openblas_get_num_threads()) }
}
