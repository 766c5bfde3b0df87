#include "CSightlineKernels.h"
#if SL_X86
#include "vector_activation.h"
#include "vector_mask.h"
#include "vector_transpose.h"
#include "../../pack.h"
#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))


// The first `count` (1…6) lanes of v to p.
AVX2 static inline __attribute__((always_inline)) void store_lanes(float *p, __m256 v, int count) {
    __m128 low = _mm256_castps256_ps128(v);
    if (count == 6) {
        _mm_storeu_ps(p, low);
        _mm_storel_pi((__m64 *)(p + 4), _mm256_extractf128_ps(v, 1));
    } else {
        float lanes[8];
        _mm256_storeu_ps(lanes, v);
        for (int i = 0; i < count; i++) p[i] = lanes[i];
    }
}

// out[2r], out[2r+1] = row r of A panel [k][6] · B [k rows, stride ldb, 16 columns] + bias
// (not activated). bias: one value per row (bias_rows, `rows` of them) or 16 per column
// (bias_cols), or none. With `indirect` set, row kk of B is indirect[kk] + b_column instead (an
// implicit im2col); callers pass a constant NULL or non-NULL, so each inlined copy keeps one
// addressing mode. prefetch_ahead (floats; 0: none) requests each row of B that far ahead.
AVX2 static inline __attribute__((always_inline)) void sl_tile_6x16(
    long k, const float *a, const float *b, long ldb, const float *const *indirect, long b_column, int rows, long prefetch_ahead,
    const float *bias_rows, const float *bias_cols, __m256 out[12]) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    float bv[6];
    for (int r = 0; r < 6; r++) bv[r] = (bias_rows && r < rows) ? bias_rows[r] : 0.0f;
    __m256 col0 = bias_cols ? _mm256_loadu_ps(bias_cols) : _mm256_setzero_ps();
    __m256 col1 = bias_cols ? _mm256_loadu_ps(bias_cols + 8) : _mm256_setzero_ps();
    c00 = _mm256_add_ps(_mm256_set1_ps(bv[0]), col0); c01 = _mm256_add_ps(_mm256_set1_ps(bv[0]), col1);
    c10 = _mm256_add_ps(_mm256_set1_ps(bv[1]), col0); c11 = _mm256_add_ps(_mm256_set1_ps(bv[1]), col1);
    c20 = _mm256_add_ps(_mm256_set1_ps(bv[2]), col0); c21 = _mm256_add_ps(_mm256_set1_ps(bv[2]), col1);
    c30 = _mm256_add_ps(_mm256_set1_ps(bv[3]), col0); c31 = _mm256_add_ps(_mm256_set1_ps(bv[3]), col1);
    c40 = _mm256_add_ps(_mm256_set1_ps(bv[4]), col0); c41 = _mm256_add_ps(_mm256_set1_ps(bv[4]), col1);
    c50 = _mm256_add_ps(_mm256_set1_ps(bv[5]), col0); c51 = _mm256_add_ps(_mm256_set1_ps(bv[5]), col1);
    for (long kk = 0; kk < k; kk++) {
        if (indirect) b = indirect[kk] + b_column;
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 t;
        t = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(t, b0, c00); c01 = _mm256_fmadd_ps(t, b1, c01);
        t = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(t, b0, c10); c11 = _mm256_fmadd_ps(t, b1, c11);
        t = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(t, b0, c20); c21 = _mm256_fmadd_ps(t, b1, c21);
        t = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(t, b0, c30); c31 = _mm256_fmadd_ps(t, b1, c31);
        t = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(t, b0, c40); c41 = _mm256_fmadd_ps(t, b1, c41);
        t = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(t, b0, c50); c51 = _mm256_fmadd_ps(t, b1, c51);
        if (prefetch_ahead) _mm_prefetch((const char *)(b + prefetch_ahead), _MM_HINT_T0);
        a += 6;
        b += ldb;
    }
    out[0] = c00; out[1] = c01; out[2] = c10; out[3] = c11; out[4] = c20; out[5] = c21;
    out[6] = c30; out[7] = c31; out[8] = c40; out[9] = c41; out[10] = c50; out[11] = c51;
}

// The tile of sl_tile_6x16 with A read in place: row r of the tile is a + r·lda (rows past
// `rows` read row 0 again and are not stored), so a row-major A needs no packing. Packing A
// into panels cost each thread a pass over all of A per call: 8 % of MiniLM's 2-thread time.
AVX2 static inline __attribute__((always_inline)) void sl_tile_6x16_rows(
    long k, const float *a, long lda, const float *b, int rows, const float *bias_cols, __m256 out[12]) {
    const float *a0 = a, *a1 = a + (rows > 1 ? lda : 0), *a2 = a + (rows > 2 ? 2 * lda : 0);
    const float *a3 = a + (rows > 3 ? 3 * lda : 0), *a4 = a + (rows > 4 ? 4 * lda : 0), *a5 = a + (rows > 5 ? 5 * lda : 0);
    __m256 col0 = bias_cols ? _mm256_loadu_ps(bias_cols) : _mm256_setzero_ps();
    __m256 col1 = bias_cols ? _mm256_loadu_ps(bias_cols + 8) : _mm256_setzero_ps();
    __m256 c00 = col0, c01 = col1, c10 = col0, c11 = col1, c20 = col0, c21 = col1;
    __m256 c30 = col0, c31 = col1, c40 = col0, c41 = col1, c50 = col0, c51 = col1;
    for (long kk = 0; kk < k; kk++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 t;
        t = _mm256_broadcast_ss(a0 + kk); c00 = _mm256_fmadd_ps(t, b0, c00); c01 = _mm256_fmadd_ps(t, b1, c01);
        t = _mm256_broadcast_ss(a1 + kk); c10 = _mm256_fmadd_ps(t, b0, c10); c11 = _mm256_fmadd_ps(t, b1, c11);
        t = _mm256_broadcast_ss(a2 + kk); c20 = _mm256_fmadd_ps(t, b0, c20); c21 = _mm256_fmadd_ps(t, b1, c21);
        t = _mm256_broadcast_ss(a3 + kk); c30 = _mm256_fmadd_ps(t, b0, c30); c31 = _mm256_fmadd_ps(t, b1, c31);
        t = _mm256_broadcast_ss(a4 + kk); c40 = _mm256_fmadd_ps(t, b0, c40); c41 = _mm256_fmadd_ps(t, b1, c41);
        t = _mm256_broadcast_ss(a5 + kk); c50 = _mm256_fmadd_ps(t, b0, c50); c51 = _mm256_fmadd_ps(t, b1, c51);
        b += 16;
    }
    out[0] = c00; out[1] = c01; out[2] = c10; out[3] = c11; out[4] = c20; out[5] = c21;
    out[6] = c30; out[7] = c31; out[8] = c40; out[9] = c41; out[10] = c50; out[11] = c51;
}

// C[6×16] = sl_tile_6x16, activated. Rows ≥ `rows` of the panel are zero padding and are not
// stored. With `transposed_out`, C is stored as Cᵀ (column j at c + j·ldc) and only its first
// `cols` columns are; otherwise all 16.
AVX2 static inline __attribute__((always_inline)) void sl_kernel_6x16_any(
    long k, const float *a, const float *b, long ldb, const float *const *indirect, long b_column, float *c, long ldc, int rows,
    int cols, int transposed_out, long prefetch_ahead, const float *bias_rows, const float *bias_cols, int act, __m256 lo, __m256 hi) {
    __m256 out[12];
    sl_tile_6x16(k, a, b, ldb, indirect, b_column, rows, prefetch_ahead, bias_rows, bias_cols, out);
    if (transposed_out) {
        // C stored transposed, [column][ldc]: two 8×8 transposes (rows 6 and 7 are zero) turn
        // each column into the `rows` contiguous floats it owns.
        __m256 z = _mm256_setzero_ps();
        __m256 left[8] = {out[0], out[2], out[4], out[6], out[8], out[10], z, z};
        __m256 right[8] = {out[1], out[3], out[5], out[7], out[9], out[11], z, z};
        for (int j = 0; j < 8; j++) { left[j] = sl_act(left[j], act, lo, hi); right[j] = sl_act(right[j], act, lo, hi); }
        transpose8(left);
        transpose8(right);
        for (int j = 0; j < cols; j++) store_lanes(c + j * ldc, j < 8 ? left[j] : right[j - 8], rows);
        return;
    }
    for (int r = 0; r < rows; r++) {
        _mm256_storeu_ps(c + r * ldc, sl_act(out[2 * r], act, lo, hi));
        _mm256_storeu_ps(c + r * ldc + 8, sl_act(out[2 * r + 1], act, lo, hi));
    }
}

AVX2 static inline void sl_kernel_6x16(long k, const float *a, const float *b, long ldb, float *c, long ldc, int rows,
                                       const float *bias_rows, const float *bias_cols, int act, __m256 lo, __m256 hi) {
    sl_kernel_6x16_any(k, a, b, ldb, NULL, 0, c, ldc, rows, 16, 0, 0, bias_rows, bias_cols, act, lo, hi);
}

AVX2 void sl_conv_indirect_row(long m, long k, const float *packed_a, long panel_begin, long panel_end,
                               const float *const *rows, long ow, float *c, long ldc, const float *bias,
                               int act, float flo, float fhi) {
    __m256 lo = _mm256_set1_ps(flo), hi = _mm256_set1_ps(fhi);
    float tile[6 * 16];
    for (long p = panel_begin; p < panel_end; p++) {
        long row0 = p * 6;
        int count = (int)(m - row0 < 6 ? m - row0 : 6);
        const float *a = packed_a + p * k * 6;
        const float *bias_rows = bias ? bias + row0 : NULL;
        long j = 0;
        for (; j + 16 <= ow; j += 16)
            sl_kernel_6x16_any(k, a, NULL, 0, rows, j, c + row0 * ldc + j, ldc, count, 16, 0, 0, bias_rows, NULL, act, lo, hi);
        if (j < ow) {
            // The rows are readable past ow (padded planes): compute a whole tile, keep what exists.
            sl_kernel_6x16_any(k, a, NULL, 0, rows, j, tile, 16, count, 16, 0, 0, bias_rows, NULL, act, lo, hi);
            for (int r = 0; r < count; r++) memcpy(c + (row0 + r) * ldc + j, tile + r * 16, (size_t)(ow - j) * sizeof(float));
        }
    }
}

AVX2 void sl_gemm_packed_a(long m, long k, const float *packed_a, long panel_begin, long panel_end,
                           const float *b, long ldb, long n, float *c, long ldc, const float *bias,
                           int act, float flo, float fhi, float *scratch) {
    __m256 lo = _mm256_set1_ps(flo), hi = _mm256_set1_ps(fhi);
    // Column chunks whose rows of B stay in L2 (≈256 KB) while every row panel of A passes over them.
    long chunk = (65536 / (k > 0 ? k : 1)) / 16 * 16;
    if (chunk < 16) chunk = 16;
    float tile[6 * 16];
    for (long n0 = 0; n0 < n; n0 += chunk) {
        long n1 = n0 + chunk < n ? n0 + chunk : n;
        for (long p = panel_begin; p < panel_end; p++) {
            long row0 = p * 6;
            int rows = (int)(m - row0 < 6 ? m - row0 : 6);
            const float *a = packed_a + p * k * 6;
            const float *bias_rows = bias ? bias + row0 : NULL;
            long j = n0;
            if (p == panel_begin) {
                // The first pass over a chunk reads B from memory: k rows of 64 bytes per tile are
                // more streams than the hardware prefetcher follows (at batch 8 the activations
                // leave L3), so each row is requested four tiles ahead.
                for (; j + 16 <= n1; j += 16)
                    sl_kernel_6x16_any(k, a, b + j, ldb, NULL, 0, c + row0 * ldc + j, ldc, rows, 16, 0, j + 80 <= n1 ? 64 : 0,
                                       bias_rows, NULL, act, lo, hi);
            }
            for (; j + 16 <= n1; j += 16)
                sl_kernel_6x16(k, a, b + j, ldb, c + row0 * ldc + j, ldc, rows, bias_rows, NULL, act, lo, hi);
            if (j < n1) {
                // Last columns: copy them into a zero-padded [k][16] block once per chunk, compute a
                // full tile, store what exists.
                long cols = n1 - j;
                if (p == panel_begin) {
                    for (long kk = 0; kk < k; kk++) {
                        memcpy(scratch + kk * 16, b + kk * ldb + j, (size_t)cols * sizeof(float));
                        memset(scratch + kk * 16 + cols, 0, (size_t)(16 - cols) * sizeof(float));
                    }
                }
                sl_kernel_6x16(k, a, scratch, 16, tile, 16, rows, bias_rows, NULL, act, lo, hi);
                for (int r = 0; r < rows; r++) memcpy(c + (row0 + r) * ldc + j, tile + r * 16, (size_t)cols * sizeof(float));
            }
        }
    }
}


// Columns 0..<rows (≤ 6) of X [k × ldx] (rows of Xᵀ) as one zero-padded 6-row panel [k][6]:
// one masked load and store per row (a scalar copy, measured on the 7-row twin, cost 40 µs on
// a 14×14 layer of 672 channels).
AVX2 static void pack_columns6(const float *x, long rows, long k, long ldx, float *panel) {
    __m256i six = sl_lane_mask(6), mask = sl_lane_mask(rows);
    for (long kk = 0; kk < k; kk++) _mm256_maskstore_ps(panel + kk * 6, six, _mm256_maskload_ps(x + kk * ldx, mask));
}

AVX2 static void sl_gemm_packed_b_any(long m, long k, const float *a, long lda, int a_transposed, const float *packed_b, long n,
                                      long panel_begin, long panel_end, float *c, long ldc, int c_transposed,
                                      const float *bias, int act, float flo, float fhi, float *scratch) {
    __m256 lo = _mm256_set1_ps(flo), hi = _mm256_set1_ps(fhi);
    float tile[6 * 16], bias_tail[16];
    // Row blocks of up to 10 panels of A, packed into scratch and kept in L2 while every
    // column panel of B passes over them once.
    for (long m0 = 0; m0 < m; m0 += 60) {
        long m1 = m0 + 60 < m ? m0 + 60 : m;
        long row_panels = (m1 - m0 + 5) / 6;
        if (a_transposed) {
            for (long p = 0; p < row_panels; p++) {
                long row0 = m0 + p * 6;
                pack_columns6(a + row0, m1 - row0 < 6 ? m1 - row0 : 6, k, lda, scratch + p * k * 6);
            }
        }
        for (long q = panel_begin; q < panel_end; q++) {
            long col0 = q * 16;
            long cols = n - col0 < 16 ? n - col0 : 16;
            const float *bp = packed_b + q * k * 16;
            const float *bias_cols = NULL;
            if (bias) {
                if (cols == 16) bias_cols = bias + col0;
                else {
                    for (long j = 0; j < 16; j++) bias_tail[j] = j < cols ? bias[col0 + j] : 0.0f;
                    bias_cols = bias_tail;
                }
            }
            for (long p = 0; p < row_panels; p++) {
                long row0 = m0 + p * 6;
                int rows = (int)(m1 - row0 < 6 ? m1 - row0 : 6);
                const float *ap = scratch + p * k * 6;
                if (!a_transposed && !c_transposed) {
                    // A row-major: read in place (sl_tile_6x16_rows); bias per column, as below.
                    __m256 out[12];
                    sl_tile_6x16_rows(k, a + row0 * lda, lda, bp, rows, bias_cols, out);
                    float *dst = cols == 16 ? c + row0 * ldc + col0 : tile;
                    long ld = cols == 16 ? ldc : 16;
                    for (int r = 0; r < rows; r++) {
                        _mm256_storeu_ps(dst + r * ld, sl_act(out[2 * r], act, lo, hi));
                        _mm256_storeu_ps(dst + r * ld + 8, sl_act(out[2 * r + 1], act, lo, hi));
                    }
                    if (cols < 16)
                        for (int r = 0; r < rows; r++) memcpy(c + (row0 + r) * ldc + col0, tile + r * 16, (size_t)cols * sizeof(float));
                } else if (c_transposed) {
                    // C stored as [n × ldc]: column j of the tile is row col0 + j of C.
                    sl_kernel_6x16_any(k, ap, bp, 16, NULL, 0, c + col0 * ldc + row0, ldc, rows, (int)cols, 1, 0, NULL, bias_cols,
                                       act, lo, hi);
                } else if (cols == 16) {
                    sl_kernel_6x16(k, ap, bp, 16, c + row0 * ldc + col0, ldc, rows, NULL, bias_cols, act, lo, hi);
                } else {
                    sl_kernel_6x16(k, ap, bp, 16, tile, 16, rows, NULL, bias_cols, act, lo, hi);
                    for (int r = 0; r < rows; r++) memcpy(c + (row0 + r) * ldc + col0, tile + r * 16, (size_t)cols * sizeof(float));
                }
            }
        }
    }
}

AVX2 void sl_gemm_packed_b_6x16(long m, long k, const float *a, long lda, const float *packed_b, long n,
                                 long panel_begin, long panel_end, float *c, long ldc, const float *bias,
                                 int act, float lo, float hi, float *scratch) {
    sl_gemm_packed_b_any(m, k, a, lda, 0, packed_b, n, panel_begin, panel_end, c, ldc, 0, bias, act, lo, hi, scratch);
}

AVX2 void sl_pointwise_transposed(long positions, long position_begin, long position_end, long channels, const float *x,
                                  const float *packed_w, long out_channels, long panel_begin, long panel_end, float *out,
                                  const float *bias, int act, float lo, float hi, float *scratch) {
    sl_gemm_packed_b_any(position_end - position_begin, channels, x + position_begin, positions, 1, packed_w, out_channels,
                         panel_begin, panel_end, out + position_begin, positions, 1, bias, act, lo, hi, scratch);
}
// Positions p·6 ..< +6 of x [channels × positions] as 6-row panels [channels][6], zero past
// the last position.
AVX2 void sl_pack_positions6(const float *x, long positions, long channels, long panel_begin, long panel_end, float *packed) {
    for (long p = panel_begin; p < panel_end; p++) {
        long p0 = p * 6;
        pack_columns6(x + p0, positions - p0 < 6 ? positions - p0 : 6, channels, positions, packed + p * channels * 6);
    }
}

// The AVX2 twin of sl_expand_interleaved_7x16 (gemm512.c): 6×16 tiles over 6-row panels of
// positions (the flattened plane pads only its last panel), each tile's row r written as two
// vectors of 8 channels into the two interleaved planes. Rows past the last position are
// computed on zero padding and not stored.
AVX2 void sl_expand_interleaved_6x16(const float *packed_x, long positions, long width, long channels, const float *packed_w,
                                     long panel, const float *bias, int act, float flo, float fhi, float *planes,
                                     long group_floats, long padded_width, long pad_top, long pad_left) {
    __m256 lo = _mm256_set1_ps(flo), hi = _mm256_set1_ps(fhi);
    const float *bp = packed_w + panel * channels * 16;
    const float *bias_cols = bias ? bias + panel * 16 : NULL;
    long row_panels = (positions + 5) / 6;
    for (long p = 0; p < row_panels; p++) {
        long p0 = p * 6;
        int rows = (int)(positions - p0 < 6 ? positions - p0 : 6);
        __m256 acc[12];
        sl_tile_6x16(channels, packed_x + p * channels * 6, bp, 16, NULL, 0, rows, 0, NULL, bias_cols, acc);
        long y = p0 / width, x = p0 % width;
        for (int r = 0; r < rows; r++) {
            float *dst = planes + ((y + pad_top) * padded_width + x + pad_left) * 8;
            _mm256_storeu_ps(dst, sl_act(acc[2 * r], act, lo, hi));
            _mm256_storeu_ps(dst + group_floats, sl_act(acc[2 * r + 1], act, lo, hi));
            if (++x == width) { x = 0; y++; }
        }
    }
}
#endif
