// Activations on sixteen lanes, and the half-vector moves, shared by the AVX-512 kernels (codes in CSightlineKernels.h;
// the same formulas as the eight-lane sl_act).
#ifndef SIGHTLINE_VECTOR_ACTIVATION512_H
#define SIGHTLINE_VECTOR_ACTIVATION512_H
#include <immintrin.h>
#include "CSightlineKernels.h"
#include "../avx2/vector_activation.h"

// Two eight-lane halves as one vector, and the upper half back, in AVX-512 F forms
// (`sl_has_avx512` does not promise DQ's 32x8 inserts and extracts).
__attribute__((target("avx512f,avx512vl,avx2,fma"))) static inline __attribute__((always_inline)) __m512
sl_join512(__m256 low, __m256 high) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(low)), _mm256_castps_pd(high), 1));
}
__attribute__((target("avx512f,avx512vl,avx2,fma"))) static inline __attribute__((always_inline)) __m256
sl_upper256(__m512 v) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

__attribute__((target("avx512f,avx512vl,avx2,fma"))) static inline __attribute__((always_inline)) __m512
act16(__m512 v, int act, __m512 lo, __m512 hi) {
    switch (act) {
    case SL_ACT_RELU: return _mm512_max_ps(v, _mm512_setzero_ps());
    case SL_ACT_CLIP: return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    case SL_ACT_HARDSWISH: {
        // x · min(max(x/6 + 1/2, 0), 1), as sl_act
        __m512 gate = _mm512_fmadd_ps(v, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
        gate = _mm512_min_ps(_mm512_max_ps(gate, _mm512_setzero_ps()), _mm512_set1_ps(1.0f));
        return _mm512_mul_ps(v, gate);
    }
    case SL_ACT_GELU_ERF: {
        // On two halves with the AVX2 formula: one definition of the approximation, and the
        // epilogue is a small part of a tile's work.
        return sl_join512(sl_gelu_erf(_mm512_castps512_ps256(v)), sl_gelu_erf(sl_upper256(v)));
    }
    default: return v;
    }
}
#endif
