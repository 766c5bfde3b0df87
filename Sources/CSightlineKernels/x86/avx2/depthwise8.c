// Depthwise convolution with eight channels in the vector lanes. The plane-at-a-time kernel in
// depthwise.c wastes lanes on small planes (a 7-wide row fills 7 of 8 lanes, and a 7×7 plane
// pays a padded copy per 49 outputs) and splits strided rows into column phases. Here eight
// planes are interleaved into one padded scratch, [row][column][8], so every tap of every
// output is one full vector whatever the plane size or stride, and eight neighbouring outputs
// leave the registers through one 8×8 transpose straight into the eight NCHW planes.
#include "CSightlineKernels.h"
#if SL_X86
#include "vector_activation.h"
#include "vector_mask.h"
#include "vector_transpose.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

AVX2 void sl_depthwise8_fill(const float *planes, long plane_stride, int lanes, long height, long width,
                             long pad_top, long pad_left, float *scratch, long padded_width) {
    for (long y = 0; y < height; y++) {
        float *dst = scratch + ((y + pad_top) * padded_width + pad_left) * 8;
        long x = 0;
        for (; x + 8 <= width; x += 8) {
            __m256 r[8];
            for (int c = 0; c < 8; c++)
                r[c] = c < lanes ? _mm256_loadu_ps(planes + c * plane_stride + y * width + x) : _mm256_setzero_ps();
            transpose8(r);
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(dst + (x + j) * 8, r[j]);
        }
        if (x < width) {
            // The last, partial block: masked loads, the same transpose, only its columns stored.
            long n = width - x;
            __m256i mask = sl_lane_mask(n);
            __m256 r[8];
            for (int c = 0; c < 8; c++)
                r[c] = c < lanes ? _mm256_maskload_ps(planes + c * plane_stride + y * width + x, mask) : _mm256_setzero_ps();
            transpose8(r);
            for (long j = 0; j < n; j++) _mm256_storeu_ps(dst + (x + j) * 8, r[j]);
        }
    }
}

/// One specialisation per (kw, s): with both constant the tap loops unroll and the
/// "which output does this input column feed" test disappears at compile time.
INLINE AVX2 void depthwise8_rows(const float *scratch, long padded_width, const int s, long sh, int kh, const int kw,
                                 const float *weight8, const float *bias8, int act, float lo, float hi,
                                 float *out, long plane_stride, int lanes, long oh, long ow) {
    const __m256 bias = _mm256_loadu_ps(bias8), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    for (long oy = 0; oy < oh; oy++) {
        for (long ox = 0; ox < ow; ox += 8) {
            __m256 acc[8];
#pragma unroll
            for (int j = 0; j < 8; j++) acc[j] = bias;
            for (int ky = 0; ky < kh; ky++) {
                const float *row = scratch + ((oy * sh + ky) * padded_width + ox * s) * 8;
                __m256 w[8];
#pragma unroll
                for (int kx = 0; kx < kw; kx++) w[kx] = _mm256_loadu_ps(weight8 + (ky * kw + kx) * 8);
                // Each input column is loaded once and feeds every output whose window holds it.
#pragma unroll
                for (int i = 0; i < 7 * s + kw; i++) {
                    __m256 v = _mm256_loadu_ps(row + i * 8);
#pragma unroll
                    for (int j = 0; j < 8; j++) {
                        int kx = i - j * s;
                        if (kx >= 0 && kx < kw) acc[j] = _mm256_fmadd_ps(v, w[kx], acc[j]);
                    }
                }
            }
            for (int j = 0; j < 8; j++) acc[j] = sl_act(acc[j], act, vlo, vhi);
            transpose8(acc);
            float *dst = out + oy * ow + ox;
            if (ox + 8 <= ow || (oy * ow + ox + 8 <= oh * ow)) {
                // A partial block that still ends inside its plane spills into rows this loop
                // writes later (masked stores are microcoded on AMD: slower).
                for (int c = 0; c < lanes; c++) _mm256_storeu_ps(dst + c * plane_stride, acc[c]);
            } else {
                float tail[8];
                for (int c = 0; c < lanes; c++) {
                    _mm256_storeu_ps(tail, acc[c]);
                    for (long j = 0; j < ow - ox; j++) dst[c * plane_stride + j] = tail[j];
                }
            }
        }
    }
}

AVX2 void sl_depthwise8_planes(const float *scratch, long padded_width, int s, long sh, int kh, int kw,
                               const float *weight8, const float *bias8, int act, float lo, float hi,
                               float *out, long plane_stride, int lanes, long oh, long ow) {
#define CASE(KW, S)                                                                                         \
    if (kw == KW && s == S) {                                                                               \
        depthwise8_rows(scratch, padded_width, S, sh, kh, KW, weight8, bias8, act, lo, hi, out, plane_stride, \
                        lanes, oh, ow);                                                                     \
        return;                                                                                             \
    }
    CASE(3, 1) CASE(3, 2) CASE(5, 1) CASE(5, 2) CASE(7, 1) CASE(7, 2)
    CASE(1, 1) CASE(1, 2) CASE(2, 1) CASE(2, 2) CASE(4, 1) CASE(4, 2) CASE(6, 1) CASE(6, 2) CASE(8, 1) CASE(8, 2)
#undef CASE
}
#endif
