import CSightlineKernels

/// Fixes glibc malloc's thresholds for how the engine allocates: every plan step makes its
/// output array (a 96×96×32 map is 1.2 MB) and drops its inputs after their last use. Left to
/// glibc's sliding thresholds, whether those arrays come from reused heap memory or from fresh
/// mmap(2) calls — each page then faulted in and zeroed on every run — depended on what the
/// process happened to free earlier: the same BlazeFace model measured 4.2 ms or 5.4 ms a run
/// (AMD EPYC Zen 4, 1 thread) after an unrelated change to plan building. Arrays under 8 MB now
/// always come from the heap, and up to 32 MB of freed heap is kept for reuse. Measured: 4.1–4.3
/// ms, and a live 720p pipeline's memory 525–539 MB instead of 510 MB (64 MB thresholds: 701 MB).
/// A per-model activation arena would make this unnecessary; until then the process sets it.
public enum AllocatorTuning {
    public static let mmapThreshold: Int32 = 8 << 20
    public static let trimThreshold: Int32 = 32 << 20

    /// Call once at process start, before the engine allocates. False where the C library is
    /// not glibc (nothing is changed there).
    @discardableResult
    public static func apply() -> Bool {
        sl_set_malloc_thresholds(mmapThreshold, trimThreshold)
    }
}
