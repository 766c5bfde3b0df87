// Activations on eight lanes, shared by the C kernels (codes in CSightlineKernels.h).
#ifndef SIGHTLINE_VECTOR_ACTIVATION_H
#define SIGHTLINE_VECTOR_ACTIVATION_H
#include <immintrin.h>
#include "CSightlineKernels.h"

__attribute__((target("avx2,fma"))) static inline __m256 sl_act(__m256 v, int act, __m256 lo, __m256 hi) {
    switch (act) {
    case SL_ACT_RELU: return _mm256_max_ps(v, _mm256_setzero_ps());
    case SL_ACT_CLIP: return _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    case SL_ACT_HARDSWISH: {
        // x · min(max(x/6 + 1/2, 0), 1)
        __m256 gate = _mm256_fmadd_ps(v, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
        gate = _mm256_min_ps(_mm256_max_ps(gate, _mm256_setzero_ps()), _mm256_set1_ps(1.0f));
        return _mm256_mul_ps(v, gate);
    }
    default: return v;
    }
}
#endif
