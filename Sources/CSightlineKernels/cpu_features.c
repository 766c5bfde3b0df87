// What the CPU can run, probed once (the one place the C side asks): the Swift side reads it
// through KernelConfig, which may cap it (SIGHTLINE_ISA) and decides which kernels run.
#include "CSightlineKernels.h"
#if SL_X86
#include <immintrin.h>
#endif

bool sl_has_avx2_fma(void) {
#if SL_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
#else
    return false;
#endif
}

bool sl_has_avx512(void) {
#if SL_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && sl_has_avx2_fma();
    }
    return cached;
#else
    return false;
#endif
}

void sl_cpu_relax(void) {
#if SL_X86
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
