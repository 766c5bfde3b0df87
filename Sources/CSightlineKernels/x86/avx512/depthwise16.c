// The eight-lane depthwise kernel of depthwise8.c for two groups at once on AVX-512: the fused
// expand → depthwise step leaves each panel of 16 expanded channels as two interleaved group
// planes ([row][column][8] each, group_floats apart), and here every input column of both is one
// zmm (two 256-bit loads joined), every tap one FMA for 16 channels. On a CPU with two 512-bit
// FMA units the eight-lane kernel used half the machine.
#include "CSightlineKernels.h"
#if SL_X86
#include "../avx2/vector_transpose.h"
#include "vector_activation512.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/// One specialisation per (kw, s), as depthwise8_rows. w16: the two groups' taps and biases
/// joined, [(kh·kw + 1)][16].
INLINE AVX512 void depthwise16_rows(const float *scratch, long group_floats, long padded_width, const int s, long sh, int kh,
                                    const int kw, const float *w16, int act, float lo, float hi, float *out,
                                    long plane_stride, long oh, long ow) {
    const __m512 bias = _mm512_loadu_ps(w16 + kh * kw * 16), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (long oy = 0; oy < oh; oy++) {
        for (long ox = 0; ox < ow; ox += 8) {
            __m512 acc[8];
#pragma unroll
            for (int j = 0; j < 8; j++) acc[j] = bias;
            for (int ky = 0; ky < kh; ky++) {
                const float *row = scratch + ((oy * sh + ky) * padded_width + ox * s) * 8;
                __m512 w[8];
#pragma unroll
                for (int kx = 0; kx < kw; kx++) w[kx] = _mm512_loadu_ps(w16 + (ky * kw + kx) * 16);
#pragma unroll
                for (int i = 0; i < 7 * s + kw; i++) {
                    __m512 v = sl_join512(_mm256_loadu_ps(row + i * 8), _mm256_loadu_ps(row + group_floats + i * 8));
#pragma unroll
                    for (int j = 0; j < 8; j++) {
                        int kx = i - j * s;
                        if (kx >= 0 && kx < kw) acc[j] = _mm512_fmadd_ps(v, w[kx], acc[j]);
                    }
                }
            }
            __m256 low[8], high[8];
#pragma unroll
            for (int j = 0; j < 8; j++) {
                __m512 a = act16(acc[j], act, vlo, vhi);
                low[j] = _mm512_castps512_ps256(a);
                high[j] = sl_upper256(a);
            }
            transpose8(low);
            transpose8(high);
            float *dst = out + oy * ow + ox;
            if (ox + 8 <= ow || (oy * ow + ox + 8 <= oh * ow)) {
                // As depthwise8_rows: a partial block that still ends inside its plane spills
                // into outputs this loop writes later.
                for (int c = 0; c < 8; c++) {
                    _mm256_storeu_ps(dst + c * plane_stride, low[c]);
                    _mm256_storeu_ps(dst + (c + 8) * plane_stride, high[c]);
                }
            } else {
                __mmask8 keep = (__mmask8)((1u << (ow - ox)) - 1);
                for (int c = 0; c < 8; c++) {
                    _mm256_mask_storeu_ps(dst + c * plane_stride, keep, low[c]);
                    _mm256_mask_storeu_ps(dst + (c + 8) * plane_stride, keep, high[c]);
                }
            }
        }
    }
}

AVX512 void sl_depthwise16_pair(const float *scratch, long group_floats, long padded_width, int s, long sh, int kh, int kw,
                                const float *weight8_first, const float *weight8_second, int act, float lo, float hi,
                                float *out, long plane_stride, long oh, long ow) {
    // The two groups' weights joined once per call (kh·kw ≤ 64 taps and the bias).
    float w16[65 * 16] __attribute__((aligned(64)));
    int taps = kh * kw;
    for (int t = 0; t <= taps; t++)
        _mm512_store_ps(w16 + t * 16, sl_join512(_mm256_loadu_ps(weight8_first + t * 8), _mm256_loadu_ps(weight8_second + t * 8)));
#define CASE(KW, S)                                                                                                       \
    if (kw == KW && s == S) {                                                                                             \
        depthwise16_rows(scratch, group_floats, padded_width, S, sh, kh, KW, w16, act, lo, hi, out, plane_stride, oh, ow); \
        return;                                                                                                           \
    }
    CASE(3, 1) CASE(3, 2) CASE(5, 1) CASE(5, 2) CASE(7, 1) CASE(7, 2)
    CASE(1, 1) CASE(1, 2) CASE(2, 1) CASE(2, 2) CASE(4, 1) CASE(4, 2) CASE(6, 1) CASE(6, 2) CASE(8, 1) CASE(8, 2)
#undef CASE
}
#endif
