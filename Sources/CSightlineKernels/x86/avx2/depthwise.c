#include "CSightlineKernels.h"
#if SL_X86
#include "vector_activation.h"
#include "vector_mask.h"
#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 void sl_depthwise_fill(const float *plane, long height, long width, long pad_top, long pad_left,
                            int s, float *scratch, long phase_width) {
    for (long y = 0; y < height; y++) {
        const float *row = plane + y * width;
        long py = y + pad_top;
        if (s == 1) {
            long count = width < phase_width - pad_left ? width : phase_width - pad_left;
            memcpy(scratch + py * phase_width + pad_left, row, (size_t)count * sizeof(float));
            continue;
        }
        // Stride 2: input column x lands in phase (x + pad_left) % 2 at (x + pad_left) / 2.
        // Even input columns share one phase, odd ones the other.
        float *even = scratch + (py * 2 + (pad_left & 1)) * phase_width + pad_left / 2;
        float *odd = scratch + (py * 2 + ((pad_left + 1) & 1)) * phase_width + (pad_left + 1) / 2;
        long evens = (width + 1) / 2, odds = width / 2;
        long even_room = phase_width - pad_left / 2, odd_room = phase_width - (pad_left + 1) / 2;
        if (evens > even_room) evens = even_room;
        if (odds > odd_room) odds = odd_room;
        long j = 0;
        for (; 2 * j + 16 <= width && j + 8 <= evens && j + 8 <= odds; j += 8) {
            __m256 a = _mm256_loadu_ps(row + 2 * j), b = _mm256_loadu_ps(row + 2 * j + 8);
            // Per 128-bit lane: [a0 a2 b0 b2], [a1 a3 b1 b3]; then put the 64-bit pairs in order.
            __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
            __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
            e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
            o = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
            _mm256_storeu_ps(even + j, e);
            _mm256_storeu_ps(odd + j, o);
        }
        for (long k = j; k < evens; k++) even[k] = row[2 * k];
        for (long k = j; k < odds; k++) odd[k] = row[2 * k + 1];
    }
}

// Eight outputs at line[ox …], fewer where the row ends at ow.
AVX2 static inline void sl_store_tail(float *line, long ox, long ow, __m256 v) { sl_store_lanes(line + ox, v, ow - ox); }

// One output plane; s, kh and kw are constants in the specialised copies below, so the tap
// loops unroll and the phase offsets fold.
AVX2 static inline __attribute__((always_inline)) void sl_depthwise_rows(
    const float *scratch, long pw, const int s, long sh, const int kh, const int kw,
    const float *w, float bias, int act, float flo, float fhi, float *out, long oh, long ow) {
    __m256 lo = _mm256_set1_ps(flo), hi = _mm256_set1_ps(fhi), b = _mm256_set1_ps(bias);
    long wide = ow / 32 * 32;
    for (long oy = 0; oy < oh; oy++) {
        float *line = out + oy * ow;
        for (long ox = 0; ox < wide; ox += 32) {
            __m256 a0 = b, a1 = b, a2 = b, a3 = b;
            for (int ky = 0; ky < kh; ky++) {
                const float *rb = scratch + ((oy * sh + ky) * s) * pw + ox;
                for (int kx = 0; kx < kw; kx++) {
                    const float *p = rb + (kx % s) * pw + kx / s;
                    __m256 t = _mm256_broadcast_ss(w + ky * kw + kx);
                    a0 = _mm256_fmadd_ps(t, _mm256_loadu_ps(p), a0);
                    a1 = _mm256_fmadd_ps(t, _mm256_loadu_ps(p + 8), a1);
                    a2 = _mm256_fmadd_ps(t, _mm256_loadu_ps(p + 16), a2);
                    a3 = _mm256_fmadd_ps(t, _mm256_loadu_ps(p + 24), a3);
                }
            }
            _mm256_storeu_ps(line + ox, sl_act(a0, act, lo, hi));
            _mm256_storeu_ps(line + ox + 8, sl_act(a1, act, lo, hi));
            _mm256_storeu_ps(line + ox + 16, sl_act(a2, act, lo, hi));
            _mm256_storeu_ps(line + ox + 24, sl_act(a3, act, lo, hi));
        }
    }
    // The last < 32 columns, eight at a time, four output rows together: one accumulator per
    // row would be a chain of kh·kw dependent FMAs (small planes, 7×7 or 14×14, are all tail).
    // Rows past oh read the scratch's spare zero rows and are not stored.
    for (long oy = 0; oy < oh; oy += 4) {
        long rows = oh - oy < 4 ? oh - oy : 4;
        for (long ox = wide; ox < ow; ox += 8) {
            __m256 a0 = b, a1 = b, a2 = b, a3 = b;
            for (int ky = 0; ky < kh; ky++) {
                const float *r0 = scratch + ((oy * sh + ky) * s) * pw + ox;
                const long step = sh * s * pw;  // one output row down
                for (int kx = 0; kx < kw; kx++) {
                    const float *p = r0 + (kx % s) * pw + kx / s;
                    __m256 t = _mm256_broadcast_ss(w + ky * kw + kx);
                    a0 = _mm256_fmadd_ps(t, _mm256_loadu_ps(p), a0);
                    a1 = _mm256_fmadd_ps(t, _mm256_loadu_ps(p + step), a1);
                    a2 = _mm256_fmadd_ps(t, _mm256_loadu_ps(p + 2 * step), a2);
                    a3 = _mm256_fmadd_ps(t, _mm256_loadu_ps(p + 3 * step), a3);
                }
            }
            __m256 acc[4] = {a0, a1, a2, a3};
            for (long r = 0; r < rows; r++) sl_store_tail(out + (oy + r) * ow, ox, ow, sl_act(acc[r], act, lo, hi));
        }
    }
}

AVX2 void sl_depthwise_plane(const float *scratch, long pw, int s, long sh, int kh, int kw,
                             const float *w, float bias, int act, float lo, float hi,
                             float *out, long oh, long ow) {
    if (s == 1 && kh == 3 && kw == 3) sl_depthwise_rows(scratch, pw, 1, sh, 3, 3, w, bias, act, lo, hi, out, oh, ow);
    else if (s == 1 && kh == 5 && kw == 5) sl_depthwise_rows(scratch, pw, 1, sh, 5, 5, w, bias, act, lo, hi, out, oh, ow);
    else if (s == 2 && kh == 3 && kw == 3) sl_depthwise_rows(scratch, pw, 2, sh, 3, 3, w, bias, act, lo, hi, out, oh, ow);
    else if (s == 2 && kh == 5 && kw == 5) sl_depthwise_rows(scratch, pw, 2, sh, 5, 5, w, bias, act, lo, hi, out, oh, ow);
    else sl_depthwise_rows(scratch, pw, s, sh, kh, kw, w, bias, act, lo, hi, out, oh, ow);
}

// Max pooling over the same phase-split scratch (pad cells hold -inf instead of zero).
AVX2 static inline __attribute__((always_inline)) void sl_maxpool_rows(
    const float *scratch, long pw, const int s, long sh, const int kh, const int kw, float *out, long oh, long ow) {
    for (long oy = 0; oy < oh; oy++) {
        float *line = out + oy * ow;
        for (long ox = 0; ox < ow; ox += 8) {
            __m256 best = _mm256_set1_ps(-__builtin_inff());
            for (int ky = 0; ky < kh; ky++) {
                const float *rb = scratch + ((oy * sh + ky) * s) * pw + ox;
                for (int kx = 0; kx < kw; kx++) best = _mm256_max_ps(best, _mm256_loadu_ps(rb + (kx % s) * pw + kx / s));
            }
            sl_store_tail(line, ox, ow, best);
        }
    }
}

AVX2 void sl_maxpool_plane(const float *scratch, long pw, int s, long sh, int kh, int kw, float *out, long oh, long ow) {
    if (s == 2 && kh == 3 && kw == 3) sl_maxpool_rows(scratch, pw, 2, sh, 3, 3, out, oh, ow);
    else if (s == 1 && kh == 3 && kw == 3) sl_maxpool_rows(scratch, pw, 1, sh, 3, 3, out, oh, ow);
    else if (s == 2 && kh == 2 && kw == 2) sl_maxpool_rows(scratch, pw, 2, sh, 2, 2, out, oh, ow);
    else sl_maxpool_rows(scratch, pw, s, sh, kh, kw, out, oh, ow);
}
#endif
