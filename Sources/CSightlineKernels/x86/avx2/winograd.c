#include "CSightlineKernels.h"
#if SL_X86
#include "vector_activation.h"
#include "vector_mask.h"
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))

// Tile rows end in partial vectors, stored with `sl_store_lanes` (vector_mask.h): the stack copy
// and memcpy before it cost PP-OCRv4's 96 → 24 layers at 184² (46 tiles a row: a tail of 6) a
// tenth of their input transform.

// Zeroes [from, to) of a scratch row with whole and masked vector stores (never past `to`).
AVX2 static inline void sl_zero_floats(float *row, long from, long to) {
    __m256 zero = _mm256_setzero_ps();
    long j = from;
    for (; j + 8 <= to; j += 8) _mm256_storeu_ps(row + j, zero);
    sl_store_lanes(row + j, zero, to - j);
}

// Winograd F(2×2, 3×3) transforms for one row of tiles, eight tiles per vector. Input tile
// column `col` of tiles tx..tx+7 is padded-row position 2·tx + col: even columns for col 0
// and 2, odd for 1 and 3, so after splitting each input row into even and odd columns every
// element of eight tiles is one contiguous load.

AVX2 void sl_winograd_input_row(const float *image, long channels, long height, long width, long pad_top, long pad_left,
                                long ty, long tiles_w, float *v, long n, float *scratch) {
    long pw = tiles_w + 16;  // even/odd columns of one padded row, with room for 8-wide loads past the end
    for (long ch = 0; ch < channels; ch++) {
        const float *plane = image + ch * height * width;
        // scratch: 4 rows × {even, odd} × pw
        for (int r = 0; r < 4; r++) {
            float *even = scratch + (r * 2) * pw, *odd = even + pw;
            memset(even, 0, (size_t)(2 * pw) * sizeof(float));
            long y = 2 * ty - pad_top + r;
            if (y < 0 || y >= height) continue;
            const float *row = plane + y * width;
            // Padded column X = x + pad_left → phase X % 2, index X / 2; only the 2·tiles_w + 2
            // columns the tiles read. Even input columns 2j land at `to_even[j]`, odd ones at
            // `to_odd[j]`: split sixteen at a time (this loop was scalar, with a branch per
            // pixel, and cost as much as the 16 products on PP-OCRv4's 96 → 24 layers).
            long limit = 2 * tiles_w + 2, end = width < limit - pad_left ? width : limit - pad_left;
            float *to_even = ((pad_left & 1) ? odd : even) + (pad_left >> 1);
            float *to_odd = ((pad_left & 1) ? even : odd) + ((pad_left + 1) >> 1);
            long x = 0;
            for (; x + 16 <= end; x += 16) {
                __m256 a = _mm256_loadu_ps(row + x), b = _mm256_loadu_ps(row + x + 8);
                // Within 128-bit lanes: [a0 a2 b0 b2 | a4 a6 b4 b6]; then the 64-bit pairs in order.
                __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
                __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
                _mm256_storeu_ps(to_even + x / 2, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))));
                _mm256_storeu_ps(to_odd + x / 2, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0))));
            }
            for (; x < end; x++) {
                if (x & 1) to_odd[x >> 1] = row[x]; else to_even[x >> 1] = row[x];
            }
        }
        for (long tx = 0; tx < tiles_w; tx += 8) {
            __m256 d[4][4];
            for (int r = 0; r < 4; r++) {
                const float *even = scratch + (r * 2) * pw + tx, *odd = even + pw;
                d[r][0] = _mm256_loadu_ps(even);
                d[r][1] = _mm256_loadu_ps(odd);
                d[r][2] = _mm256_loadu_ps(even + 1);
                d[r][3] = _mm256_loadu_ps(odd + 1);
            }
            // Bᵀ d: rows; then · B: columns.
            __m256 t[4][4];
            for (int c = 0; c < 4; c++) {
                t[0][c] = _mm256_sub_ps(d[0][c], d[2][c]);
                t[1][c] = _mm256_add_ps(d[1][c], d[2][c]);
                t[2][c] = _mm256_sub_ps(d[2][c], d[1][c]);
                t[3][c] = _mm256_sub_ps(d[1][c], d[3][c]);
            }
            long count = tiles_w - tx < 8 ? tiles_w - tx : 8;
            for (int r = 0; r < 4; r++) {
                __m256 e[4] = {
                    _mm256_sub_ps(t[r][0], t[r][2]), _mm256_add_ps(t[r][1], t[r][2]),
                    _mm256_sub_ps(t[r][2], t[r][1]), _mm256_sub_ps(t[r][1], t[r][3]),
                };
                for (int c = 0; c < 4; c++) {
                    float *dst = v + ((long)(r * 4 + c) * channels + ch) * n + tx;
                    if (count == 8) _mm256_storeu_ps(dst, e[c]);
                    else sl_store_lanes(dst, e[c], count);
                }
            }
        }
    }
}

AVX2 void sl_winograd_output_row(const float *products, long m, long n, long tiles_w, float *out_image, long oh, long ow,
                                 long ty, const float *bias, int act, float flo, float fhi) {
    __m256 lo = _mm256_set1_ps(flo), hi = _mm256_set1_ps(fhi);
    long oy = 2 * ty;
    for (long o = 0; o < m; o++) {
        __m256 b = _mm256_set1_ps(bias ? bias[o] : 0.0f);
        float *row0 = out_image + (o * oh + oy) * ow, *row1 = row0 + ow;
        for (long tx = 0; tx < tiles_w; tx += 8) {
            __m256 p[4][4];
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++) p[r][c] = _mm256_loadu_ps(products + ((long)(r * 4 + c) * m + o) * n + tx);
            // Aᵀ M (rows), then · A (columns).
            __m256 r0[4], r1[4];
            for (int c = 0; c < 4; c++) {
                r0[c] = _mm256_add_ps(_mm256_add_ps(p[0][c], p[1][c]), p[2][c]);
                r1[c] = _mm256_sub_ps(_mm256_sub_ps(p[1][c], p[2][c]), p[3][c]);
            }
            __m256 y00 = sl_act(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r0[0], r0[1]), r0[2]), b), act, lo, hi);
            __m256 y01 = sl_act(_mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(r0[1], r0[2]), r0[3]), b), act, lo, hi);
            __m256 y10 = sl_act(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r1[0], r1[1]), r1[2]), b), act, lo, hi);
            __m256 y11 = sl_act(_mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(r1[1], r1[2]), r1[3]), b), act, lo, hi);
            // Interleave the two output columns of each tile: 16 contiguous outputs per row.
            __m256 lo0 = _mm256_unpacklo_ps(y00, y01), hi0 = _mm256_unpackhi_ps(y00, y01);
            __m256 lo1 = _mm256_unpacklo_ps(y10, y11), hi1 = _mm256_unpackhi_ps(y10, y11);
            __m256 a0 = _mm256_permute2f128_ps(lo0, hi0, 0x20), a1 = _mm256_permute2f128_ps(lo0, hi0, 0x31);
            __m256 c0 = _mm256_permute2f128_ps(lo1, hi1, 0x20), c1 = _mm256_permute2f128_ps(lo1, hi1, 0x31);
            long ox = 2 * tx;
            long count = ow - ox < 16 ? ow - ox : 16;  // outputs of these tiles inside the row
            if (count == 16) {
                _mm256_storeu_ps(row0 + ox, a0); _mm256_storeu_ps(row0 + ox + 8, a1);
                if (oy + 1 < oh) { _mm256_storeu_ps(row1 + ox, c0); _mm256_storeu_ps(row1 + ox + 8, c1); }
            } else {
                sl_store_lanes(row0 + ox, a0, count);
                sl_store_lanes(row0 + ox + 8, a1, count - 8);
                if (oy + 1 < oh) {
                    sl_store_lanes(row1 + ox, c0, count);
                    sl_store_lanes(row1 + ox + 8, c1, count - 8);
                }
            }
        }
    }
}
// Winograd F(4×4, 3×3) (interpolation points 0, ±1, ±2 and ∞): each 4×4 output tile from a 6×6
// input tile, 36 products per channel pair for 16 outputs (F(2×2, 3×3): 16 for 4), so the GEMMs
// do 0.56× the multiply-adds and the transformed input per output pixel is 0.56× as large.
//   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
// Input tile column `col` of tile tx is padded-row position 4·tx + col: each padded row is split
// into its four column phases (X mod 4), so column col of eight tiles is the contiguous load
// phase[col mod 4][tx + col / 4].

// Bᵀ applied to six vectors (one column or one row of eight tiles' 6×6 blocks).
AVX2 static inline void sl_winograd43_bt(const __m256 d[6], __m256 t[6]) {
    const __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f), two = _mm256_set1_ps(2.0f);
    // t0 = 4 d0 − 5 d2 + d4;  t5 = 4 d1 − 5 d3 + d5
    t[0] = _mm256_fnmadd_ps(five, d[2], _mm256_fmadd_ps(four, d[0], d[4]));
    t[5] = _mm256_fnmadd_ps(five, d[3], _mm256_fmadd_ps(four, d[1], d[5]));
    // t1,2 = (d4 − 4 d2) ∓ (4 d1 − d3);  t3,4 = (d4 − d2) ∓ 2 (d1 − d3)
    __m256 a = _mm256_fnmadd_ps(four, d[2], d[4]), b = _mm256_fmsub_ps(four, d[1], d[3]);
    t[1] = _mm256_sub_ps(a, b);
    t[2] = _mm256_add_ps(a, b);
    __m256 c = _mm256_sub_ps(d[4], d[2]), e = _mm256_mul_ps(two, _mm256_sub_ps(d[1], d[3]));
    t[3] = _mm256_sub_ps(c, e);
    t[4] = _mm256_add_ps(c, e);
}

AVX2 void sl_winograd43_input_row(const float *image, long channels, long height, long width, long pad_top, long pad_left,
                                  long ty, long tiles_w, float *v, long n, float *scratch) {
    long pw = tiles_w + 16;  // one column phase of a padded row, with room for 8-wide loads past the end
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (long ch = 0; ch < channels; ch++) {
        const float *plane = image + ch * height * width;
        // scratch: 6 rows × 4 phases × pw
        for (int r = 0; r < 6; r++) {
            float *phase0 = scratch + (r * 4) * pw;
            long y = 4 * ty - pad_top + r;
            if (y < 0 || y >= height) {
                sl_zero_floats(phase0, 0, 4 * pw);
                continue;
            }
            const float *row = plane + y * width;
            // Input column x = 4j + q lands at padded X = x + pad_left: phase (q + pad_left) mod 4,
            // index j + (q + pad_left) / 4. Only the 4·tiles_w + 2 columns the tiles read.
            long limit = 4 * tiles_w + 2, end = width < limit - pad_left ? width : limit - pad_left;
            // Each phase's places the copy below leaves alone (the left padding, and from the
            // row's end to the phase's end) are zeroed; the rest is overwritten. Zeroing every
            // phase whole wrote more than the row's data read.
            for (int p = 0; p < 4; p++) {
                float *ph = phase0 + p * pw;
                long first = pad_left + ((p - pad_left) % 4 + 4) % 4;  // first padded column of phase p the copy writes
                long stop = end > 0 ? end + pad_left : 0;               // the copy writes padded columns below this
                long lo = first / 4 < pw ? first / 4 : pw;
                long hi = stop > first ? (stop - 1 - first) / 4 + lo + 1 : lo;
                if (hi > pw) hi = pw;
                sl_zero_floats(ph, 0, lo);
                sl_zero_floats(ph, hi, pw);
            }
            float *to[4];
            for (int q = 0; q < 4; q++) to[q] = scratch + (r * 4 + (q + pad_left) % 4) * pw + (q + pad_left) / 4;
            long x = 0;
            for (; x + 32 <= end; x += 32) {
                __m256 a = _mm256_loadu_ps(row + x), b = _mm256_loadu_ps(row + x + 8);
                __m256 c = _mm256_loadu_ps(row + x + 16), d = _mm256_loadu_ps(row + x + 24);
                // Even/odd within 128-bit lanes, then phases 0/2 and 1/3; lanes come out as
                // [a b c d | a' b' c' d'] and `order` puts the eight in column order.
                __m256 eab = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), oab = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
                __m256 ecd = _mm256_shuffle_ps(c, d, _MM_SHUFFLE(2, 0, 2, 0)), ocd = _mm256_shuffle_ps(c, d, _MM_SHUFFLE(3, 1, 3, 1));
                __m256 p0 = _mm256_shuffle_ps(eab, ecd, _MM_SHUFFLE(2, 0, 2, 0)), p2 = _mm256_shuffle_ps(eab, ecd, _MM_SHUFFLE(3, 1, 3, 1));
                __m256 p1 = _mm256_shuffle_ps(oab, ocd, _MM_SHUFFLE(2, 0, 2, 0)), p3 = _mm256_shuffle_ps(oab, ocd, _MM_SHUFFLE(3, 1, 3, 1));
                _mm256_storeu_ps(to[0] + x / 4, _mm256_permutevar8x32_ps(p0, order));
                _mm256_storeu_ps(to[1] + x / 4, _mm256_permutevar8x32_ps(p1, order));
                _mm256_storeu_ps(to[2] + x / 4, _mm256_permutevar8x32_ps(p2, order));
                _mm256_storeu_ps(to[3] + x / 4, _mm256_permutevar8x32_ps(p3, order));
            }
            for (; x < end; x++) to[x & 3][x >> 2] = row[x];
        }
        for (long tx = 0; tx < tiles_w; tx += 8) {
            // Bᵀ d: each column of the six rows; then · B: each row of the result.
            __m256 t[6][6];
            for (int col = 0; col < 6; col++) {
                __m256 d[6], e[6];
                for (int r = 0; r < 6; r++) d[r] = _mm256_loadu_ps(scratch + (r * 4 + col % 4) * pw + tx + col / 4);
                sl_winograd43_bt(d, e);
                for (int r = 0; r < 6; r++) t[r][col] = e[r];
            }
            long count = tiles_w - tx < 8 ? tiles_w - tx : 8;
            for (int r = 0; r < 6; r++) {
                __m256 e[6];
                sl_winograd43_bt(t[r], e);
                for (int c = 0; c < 6; c++) {
                    float *dst = v + ((long)(r * 6 + c) * channels + ch) * n + tx;
                    if (count == 8) _mm256_storeu_ps(dst, e[c]);
                    else sl_store_lanes(dst, e[c], count);
                }
            }
        }
    }
}

// Aᵀ applied to six vectors.
AVX2 static inline void sl_winograd43_at(const __m256 p[6], __m256 y[4]) {
    const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), eight = _mm256_set1_ps(8.0f);
    __m256 s12 = _mm256_add_ps(p[1], p[2]), d12 = _mm256_sub_ps(p[1], p[2]);
    __m256 s34 = _mm256_add_ps(p[3], p[4]), d34 = _mm256_sub_ps(p[3], p[4]);
    y[0] = _mm256_add_ps(_mm256_add_ps(p[0], s12), s34);
    y[1] = _mm256_fmadd_ps(two, d34, d12);
    y[2] = _mm256_fmadd_ps(four, s34, s12);
    y[3] = _mm256_add_ps(_mm256_fmadd_ps(eight, d34, d12), p[5]);
}

AVX2 void sl_winograd43_output_row(const float *products, long m, long n, long tiles_w, float *out_image, long oh, long ow,
                                   long ty, const float *bias, int act, float flo, float fhi) {
    __m256 lo = _mm256_set1_ps(flo), hi = _mm256_set1_ps(fhi);
    long oy = 4 * ty;
    for (long o = 0; o < m; o++) {
        __m256 b = _mm256_set1_ps(bias ? bias[o] : 0.0f);
        for (long tx = 0; tx < tiles_w; tx += 8) {
            // Aᵀ M: each column; then · A: each row of the 4×6 result.
            __m256 t[4][6];
            for (int c = 0; c < 6; c++) {
                __m256 p[6], y[4];
                for (int r = 0; r < 6; r++) p[r] = _mm256_loadu_ps(products + ((long)(r * 6 + c) * m + o) * n + tx);
                sl_winograd43_at(p, y);
                for (int r = 0; r < 4; r++) t[r][c] = y[r];
            }
            long ox = 4 * tx;
            long count = ow - ox < 32 ? ow - ox : 32;  // outputs of these tiles inside the row
            for (int r = 0; r < 4 && oy + r < oh; r++) {
                __m256 y[4];
                sl_winograd43_at(t[r], y);
                for (int c = 0; c < 4; c++) y[c] = sl_act(_mm256_add_ps(y[c], b), act, lo, hi);
                // Transpose 4 × 8 (column c of tile j) into the row's 32 outputs, tile by tile.
                __m256 t0 = _mm256_unpacklo_ps(y[0], y[1]), t1 = _mm256_unpackhi_ps(y[0], y[1]);
                __m256 t2 = _mm256_unpacklo_ps(y[2], y[3]), t3 = _mm256_unpackhi_ps(y[2], y[3]);
                __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
                __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
                __m256 row[4] = {
                    _mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u2, u3, 0x20),
                    _mm256_permute2f128_ps(u0, u1, 0x31), _mm256_permute2f128_ps(u2, u3, 0x31),
                };
                float *dst = out_image + (o * oh + oy + r) * ow + ox;
                if (count == 32) {
                    for (int k = 0; k < 4; k++) _mm256_storeu_ps(dst + 8 * k, row[k]);
                } else {
                    for (int k = 0; k < 4; k++) sl_store_lanes(dst + 8 * k, row[k], count - 8 * k);
                }
            }
        }
    }
}
#endif
