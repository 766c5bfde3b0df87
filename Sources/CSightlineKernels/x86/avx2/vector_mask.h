// Lane masks for AVX2 masked loads and stores, shared by the C kernels.
#ifndef SIGHTLINE_VECTOR_MASK_H
#define SIGHTLINE_VECTOR_MASK_H
#include <immintrin.h>

/// Lanes 0..<n (0 ≤ n ≤ 8) set: the masked loads and stores of a partial block or panel.
__attribute__((target("avx2"))) static inline __m256i sl_lane_mask(long n) {
    static const int table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(table + 8 - n));
}

/// The first `count` lanes of `v` at `dst` (none for count ≤ 0, all eight for count ≥ 8), by a
/// masked store: a row's tail through a stack copy and memcpy cost a libc call per vector.
__attribute__((target("avx2"))) static inline void sl_store_lanes(float *dst, __m256 v, long count) {
    if (count >= 8) _mm256_storeu_ps(dst, v);
    else if (count > 0) _mm256_maskstore_ps(dst, sl_lane_mask(count), v);
}
#endif
