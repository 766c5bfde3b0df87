import CSightlineKernels

/// Caps glibc malloc at one arena for the whole process.
///
/// glibc gives threads their own arenas (up to 8 per core) to avoid lock contention. Our threads
/// (Dispatch workers, the kernel pool, decoders, node queues) each allocate and free whole
/// activation maps, and what one arena frees the others cannot reuse: the live 720p pipeline
/// held 626 MB with the default, 365 MB with two arenas and 327 MB with one, with the same
/// latency (p99 301 vs 321 ms; AMD EPYC Zen 4, 2 cores). batch.yaml on 60 s of 720p: 882 MB →
/// 711 MB, 21.9 s → 17.3 s. Contention stays low because the engine allocates per step (one
/// array per layer), not per pixel.
///
/// A user who sets MALLOC_ARENA_MAX keeps their own value.
public enum AllocatorTuning {
    public static let arenas: Int32 = 1

    /// The arena limit to set, or nil when the environment already chose one.
    public static func arenaLimit(environment: [String: String]) -> Int32? {
        environment["MALLOC_ARENA_MAX"] == nil ? arenas : nil
    }

    /// Call once at process start, before other threads allocate. False when nothing was set
    /// (the environment chose, or the C library is not glibc).
    @discardableResult
    public static func apply(environment: [String: String]) -> Bool {
        guard let limit = arenaLimit(environment: environment) else { return false }
        return sl_set_malloc_arena_max(limit)
    }
}
