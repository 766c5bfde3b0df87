// Activations on eight lanes, shared by the C kernels (codes in CSightlineKernels.h).
#ifndef SIGHTLINE_VECTOR_ACTIVATION_H
#define SIGHTLINE_VECTOR_ACTIVATION_H
#include <immintrin.h>
#include "CSightlineKernels.h"

// e^x for x ≤ 0 (below −87 it is taken as e^−87, about 1.6e−38): x = n·ln2 + r with
// |r| ≤ ln2/2, e^r by its Taylor polynomial to r⁶ (relative error about 2e−7), times 2^n built in
// the exponent bits.
__attribute__((target("avx2,fma"))) static inline __m256 sl_exp_nonpositive(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 in two parts: n·hi is exact
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

// GELU, erf form: x·½·(1 + erf(x/√2)), erf by Abramowitz & Stegun 7.1.26 (absolute error
// ≤ 1.5e−7), the same formula as the Swift `geluErf`; fused into the GEMM tiles so MiniLM's
// feed-forward output is activated in registers instead of in a second pass.
__attribute__((target("avx2,fma"))) static inline __m256 sl_gelu_erf(__m256 v) {
    __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
    __m256 z = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v), _mm256_set1_ps(0.70710678118654752f));
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(z, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 poly = _mm256_fmadd_ps(t, _mm256_set1_ps(1.061405429f), _mm256_set1_ps(-1.453152027f));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(1.421413741f));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-0.284496736f));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(0.254829592f));
    poly = _mm256_mul_ps(poly, t);
    __m256 e = _mm256_fnmadd_ps(poly, sl_exp_nonpositive(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), z), z)), _mm256_set1_ps(1.0f));
    __m256 erf = _mm256_xor_ps(e, sign);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
}

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
    case SL_ACT_GELU_ERF: return sl_gelu_erf(v);
    default: return v;
    }
}
#endif
