// glibc's malloc arena limit and thresholds, which Swift cannot set: <malloc.h> is not in its
// Glibc module.
// AllocatorTuning (SightlineKernels) says why the process sets it.
#include "CSightlineKernels.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

bool sl_set_malloc_arena_max(int arenas) {
#if defined(__GLIBC__)
    return mallopt(M_ARENA_MAX, arenas) == 1;
#else
    (void)arenas;
    return false;
#endif
}

bool sl_set_malloc_thresholds(long mmap_threshold, long trim_threshold) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) == 1;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    return false;
#endif
}
