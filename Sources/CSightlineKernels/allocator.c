// glibc's malloc thresholds, which Swift cannot set: <malloc.h> is not in its Glibc module.
// AllocatorTuning (SightlineKernels) says why the engine fixes them.
#include "CSightlineKernels.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

bool sl_set_malloc_thresholds(int mmap_threshold, int trim_threshold) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    return false;
#endif
}
