import CSightlineKernels

/// Tunes glibc malloc for a process that allocates and frees whole activation maps.
///
/// **One arena.** glibc gives threads their own arenas (up to 8 per core) to avoid lock
/// contention. Our threads (Dispatch workers, the kernel pool, decoders, node queues) each
/// allocate and free whole activation maps, and what one arena frees the others cannot reuse:
/// the live 720p pipeline held 626 MB with the default, 365 MB with two arenas and 327 MB with
/// one, with the same latency (p99 301 vs 321 ms; AMD EPYC Zen 4, 2 cores). batch.yaml on 60 s
/// of 720p: 882 MB → 711 MB, 21.9 s → 17.3 s. Contention stays low because the engine allocates
/// per step (one array per layer), not per pixel.
///
/// **Fixed thresholds.** By default glibc serves blocks above a threshold (128 KB, raised up to
/// 32 MB as large blocks are freed) with their own mmap, and gives the top of the heap back to
/// the kernel whenever more than twice that is free. A model alone on a thread (`sightline ocr`,
/// `bench infer`) frees most of its maps at the end of each image, so every image faulted them
/// in again: PP-OCRv4 on 60 frames of 720p took 1.7 M page faults and 4 s of system time out of
/// 21 s. With every block up to 32 MB on the heap and up to 64 MB of free top kept, that was
/// 36 k faults, 0.3 s system and 16.5–17 s in all, at the same peak RSS (197 MB); the live
/// pipeline went from 247 to 256 MB. A dedicated activation arena would do the same for the
/// engine alone; this does it for every allocation, in two calls.
///
/// A user who sets MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ keeps
/// their own values (glibc reads them before we run; setting either threshold is theirs to pair).
public enum AllocatorTuning {
    public static let arenas: Int32 = 1
    public static let mmapThreshold = 32 << 20
    public static let trimThreshold = 64 << 20

    /// The arena limit to set, or nil when the environment already chose one.
    public static func arenaLimit(environment: [String: String]) -> Int32? {
        environment["MALLOC_ARENA_MAX"] == nil ? arenas : nil
    }

    /// The mmap and trim thresholds to set, or nil when the environment chose either.
    public static func thresholds(environment: [String: String]) -> (mmap: Int, trim: Int)? {
        environment["MALLOC_MMAP_THRESHOLD_"] == nil && environment["MALLOC_TRIM_THRESHOLD_"] == nil ? (mmapThreshold, trimThreshold) : nil
    }

    /// Call once at process start, before other threads allocate. False when nothing was set
    /// (the environment chose everything, or the C library is not glibc).
    @discardableResult
    public static func apply(environment: [String: String]) -> Bool {
        var applied = false
        if let limit = arenaLimit(environment: environment) { applied = sl_set_malloc_arena_max(limit) }
        if let (mmap, trim) = thresholds(environment: environment) { applied = sl_set_malloc_thresholds(mmap, trim) || applied }
        return applied
    }
}
