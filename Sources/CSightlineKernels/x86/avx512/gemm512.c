// The GEMM tiles on AVX-512.
//
// Packed B (linear layers, the transposed 1×1 convolution, the expand half of a fused
// expand → depthwise block): 7-row panels of A, one load of B and seven broadcasts of A per step,
// two panels per tile (14 zmm accumulators) where there are two. Two reasons over the AVX2 6×16
// tile in gemm.c:
// - Every plane of the CNNs we run is a multiple of 7 wide (224 = 32·7), so positions split
//   into 7-row panels without padding; 6-row panels pad 49 positions to 54 (10%).
// - A third fewer instructions per multiply (an FMA reads its broadcast straight from memory),
//   which on Zen 4 measured 10% faster even where padding is equal, and 12% faster with the
//   weights arriving from L3 as they do in a model run (`bench infer --profile-steps`).
// Packed A (a convolution's weights in 6-row panels against its input read in place): 12×32
// tiles (tile_12x32).
// Masked loads and stores (AVX-512VL) handle partial tiles without a scratch copy.
#include "CSightlineKernels.h"
#if SL_X86
#include "../../pack.h"
#include "../avx2/vector_transpose.h"
#include "vector_activation512.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))


// Seven rows of tile accumulators (rows 0..<rows ≤ 7 stored) as Cᵀ: column j at c + j·ldc,
// by two 8×8 transposes of the accumulators' halves (row 7 zero).
INLINE AVX512 void store_transposed7(const __m512 acc[7], int rows, int cols, float *c, long ldc) {
    __m256 left[8], right[8];
#pragma unroll
    for (int r = 0; r < 7; r++) {
        left[r] = _mm512_castps512_ps256(acc[r]);
        right[r] = sl_upper256(acc[r]);
    }
    left[7] = right[7] = _mm256_setzero_ps();
    transpose8(left);
    transpose8(right);
    __mmask8 positions = (__mmask8)((1u << rows) - 1);
    for (int j = 0; j < cols; j++) _mm256_mask_storeu_ps(c + j * ldc, positions, j < 8 ? left[j] : right[j - 8]);
}

// One or two 7-row panels of A (a, then a + 7·k when `two`) against one B panel [k][16]:
// out[r] = row r of the first panel, out[7 + r] of the second, each its bias per column (lanes
// past `columns` read as zero) plus the products in k order, activated. Seven accumulators
// keep only seven FMAs in flight, fewer than two FMA units with a four-cycle latency take;
// fourteen fill them. The accumulators stay in a local array indexed by constants (see
// tile_12x32).
INLINE AVX512 void tile_14x16(long k, const float *a, int two, const float *b, const float *bias_cols, __mmask16 columns,
                              int act, __m512 lo, __m512 hi, __m512 out[14]) {
    __m512 init = bias_cols ? _mm512_maskz_loadu_ps(columns, bias_cols) : _mm512_setzero_ps();
    __m512 acc[14];
#pragma unroll
    for (int r = 0; r < 14; r++) acc[r] = init;
    const float *a1 = a + 7 * k;
    for (long kk = 0; kk < k; kk++) {
        __m512 bv = _mm512_loadu_ps(b);
#pragma unroll
        for (int r = 0; r < 7; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), bv, acc[r]);
        if (two) {
#pragma unroll
            for (int r = 0; r < 7; r++) acc[7 + r] = _mm512_fmadd_ps(_mm512_set1_ps(a1[r]), bv, acc[7 + r]);
            a1 += 7;
        }
        a += 7;
        b += 16;
    }
#pragma unroll
    for (int r = 0; r < 14; r++) out[r] = act16(acc[r], act, lo, hi);
}

// A single row (a linear layer at batch 1): seven-row tiles would spend 6/7 of their FMAs
// on padding, so this one splits k over four accumulators instead; it streams B at memory speed.
INLINE AVX512 void kernel_1x16(long k, const float *a, const float *b, float *c, int cols, const float *bias_cols, int act,
                               __m512 lo, __m512 hi) {
    __mmask16 columns = (__mmask16)((1u << cols) - 1);
    __m512 s0 = bias_cols ? _mm512_maskz_loadu_ps(columns, bias_cols) : _mm512_setzero_ps();
    __m512 s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    long kk = 0;
    for (; kk + 4 <= k; kk += 4, a += 28, b += 64) {
        s0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0]), _mm512_loadu_ps(b), s0);
        s1 = _mm512_fmadd_ps(_mm512_set1_ps(a[7]), _mm512_loadu_ps(b + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_set1_ps(a[14]), _mm512_loadu_ps(b + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_set1_ps(a[21]), _mm512_loadu_ps(b + 48), s3);
    }
    for (; kk < k; kk++, a += 7, b += 16) s0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0]), _mm512_loadu_ps(b), s0);
    __m512 sum = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
    _mm512_mask_storeu_ps(c, columns, act16(sum, act, lo, hi));
}

// A [m × k] (row-major) · packed B, seven rows of A at a time (two panels per tile where there
// are two; a lone last row on kernel_1x16).
AVX512 void sl_gemm_packed_b_7x16(long m, long k, const float *a, long lda, const float *packed_b, long n,
                                  long panel_begin, long panel_end, float *c, long ldc,
                                  const float *bias, int act, float flo, float fhi, float *scratch) {
    __m512 lo = _mm512_set1_ps(flo), hi = _mm512_set1_ps(fhi);
    // Row blocks of up to 10 panels of A, packed into scratch and kept in L2 while every
    // column panel of B passes over them once (as gemm.c).
    for (long m0 = 0; m0 < m; m0 += 70) {
        long m1 = m0 + 70 < m ? m0 + 70 : m;
        long row_panels = (m1 - m0 + 6) / 7;
        sl_pack_panels(a + m0 * lda, m1 - m0, k, lda, 7, scratch);
        for (long q = panel_begin; q < panel_end; q++) {
            long col0 = q * 16;
            int cols = (int)(n - col0 < 16 ? n - col0 : 16);
            const float *bp = packed_b + q * k * 16;
            const float *bias_cols = bias ? bias + col0 : NULL;
            __mmask16 columns = (__mmask16)((1u << cols) - 1);
            for (long p = 0; p < row_panels;) {
                long row0 = m0 + p * 7;
                long left = m1 - row0;
                const float *ap = scratch + p * k * 7;
                if (left == 1) {
                    kernel_1x16(k, ap, bp, c + row0 * ldc + col0, cols, bias_cols, act, lo, hi);
                    break;
                }
                int two = p + 1 < row_panels;
                int rows = (int)(left < (two ? 14 : 7) ? left : (two ? 14 : 7));
                __m512 acc[14];
                if (two) tile_14x16(k, ap, 1, bp, bias_cols, columns, act, lo, hi, acc);
                else tile_14x16(k, ap, 0, bp, bias_cols, columns, act, lo, hi, acc);
                for (int r = 0; r < rows; r++) _mm512_mask_storeu_ps(c + (row0 + r) * ldc + col0, columns, acc[r]);
                p += two ? 2 : 1;
            }
        }
    }
}

AVX512 void sl_pointwise_transposed_7x16(long batch, long positions, long position_begin, long position_end, long channels,
                                         const float *x, const float *packed_w, long out_channels, long panel_begin,
                                         long panel_end, float *out, const float *bias, int act, float flo, float fhi,
                                         float *scratch, long block_panels) {
    __m512 lo = _mm512_set1_ps(flo), hi = _mm512_set1_ps(fhi);
    // Row panels are numbered over every image: panel i is image i / per_image, positions from
    // position_begin + 7·(i % per_image). A block of them, packed, meets each weight panel once.
    long per_image = (position_end - position_begin + 6) / 7;
    long total = batch * per_image;
    for (long b0 = 0; b0 < total; b0 += block_panels) {
        long b1 = b0 + block_panels < total ? b0 + block_panels : total;
        for (long i = b0; i < b1; i++) {
            long image = i / per_image, p0 = position_begin + (i % per_image) * 7;
            long rows = position_end - p0 < 7 ? position_end - p0 : 7;
            sl_pack_columns7(x + image * channels * positions + p0, rows, channels, positions, scratch + (i - b0) * channels * 7);
        }
        for (long q = panel_begin; q < panel_end; q++) {
            long col0 = q * 16;
            int cols = (int)(out_channels - col0 < 16 ? out_channels - col0 : 16);
            const float *bp = packed_w + q * channels * 16;
            const float *bias_cols = bias ? bias + col0 : NULL;
            __mmask16 columns = (__mmask16)((1u << cols) - 1);
            for (long i = b0; i < b1;) {
                // Two panels at once where both are positions of the same image.
                long image = i / per_image, p0 = position_begin + (i % per_image) * 7;
                int two = i + 1 < b1 && (i + 1) / per_image == image;
                long left = position_end - p0;
                int rows = (int)(left < (two ? 14 : 7) ? left : (two ? 14 : 7));
                float *c = out + image * out_channels * positions + col0 * positions + p0;
                __m512 acc[14];
                if (two) tile_14x16(channels, scratch + (i - b0) * channels * 7, 1, bp, bias_cols, columns, act, lo, hi, acc);
                else tile_14x16(channels, scratch + (i - b0) * channels * 7, 0, bp, bias_cols, columns, act, lo, hi, acc);
                store_transposed7(acc, rows < 7 ? rows : 7, cols, c, positions);
                if (two) store_transposed7(acc + 7, rows - 7, cols, c + 7, positions);
                i += two ? 2 : 1;
            }
        }
    }
}

// The packed-A GEMM (a convolution's weights in 6-row panels, its input read in place) on
// AVX-512: 12×32 tiles, two weight panels against 32 columns of B, 24 zmm accumulators. On a
// CPU with two 512-bit FMA units (Intel Xeon since Skylake-SP) the AVX2 6×16 tile reaches at
// most half the machine: measured 58–76 GFLOP/s there against 98–136 for this tile on the same
// shapes (EfficientNet's and PP-OCR's 1×1 layers, one core of a Xeon family 6 model 207). Each
// element of C is the same sequence of FMAs as in the AVX2 tile (bias first, then k in order),
// so the two give bit-identical results. acc[2r], acc[2r+1] = row r of the tile: rows 0–5 from
// panel a0, rows 6–11 from a1 (when `two`); row kk of B is b + kk·ldb, or indirect[kk] +
// b_column (an implicit im2col). Lanes past `m0`/`m1` are read as zero (masked loads never
// fault), so B need not be readable past the tile's last column.
INLINE AVX512 void tile_12x32(long k, const float *a0, const float *a1, int two, const float *b, long ldb,
                              const float *const *indirect, long b_column, int full, __mmask16 m0, __mmask16 m1,
                              const float *bias_rows, int rows, long prefetch_ahead, __m512 out[24]) {
    // The accumulators are a local array indexed only by constants, so they live in registers
    // for the whole loop; `out` is written once at the end. (Accumulating in the caller's
    // array, which its store loop indexes by a variable, made clang keep a copy on the stack
    // and store all 24 every step once B came through the row-pointer table: 1.6× slower.)
    __m512 acc[24];
#pragma unroll
    for (int r = 0; r < 12; r++) {
        __m512 init = bias_rows && r < rows ? _mm512_set1_ps(bias_rows[r]) : _mm512_setzero_ps();
        acc[2 * r] = init;
        acc[2 * r + 1] = init;
    }
    for (long kk = 0; kk < k; kk++) {
        if (indirect) b = indirect[kk] + b_column;
        __m512 b0 = full ? _mm512_loadu_ps(b) : _mm512_maskz_loadu_ps(m0, b);
        __m512 b1 = full ? _mm512_loadu_ps(b + 16) : _mm512_maskz_loadu_ps(m1, b + 16);
        if (prefetch_ahead) {
            _mm_prefetch((const char *)(b + prefetch_ahead), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + prefetch_ahead + 16), _MM_HINT_T0);
        }
#pragma unroll
        for (int r = 0; r < 6; r++) {
            __m512 t = _mm512_set1_ps(a0[r]);
            acc[2 * r] = _mm512_fmadd_ps(t, b0, acc[2 * r]);
            acc[2 * r + 1] = _mm512_fmadd_ps(t, b1, acc[2 * r + 1]);
        }
        if (two) {
#pragma unroll
            for (int r = 0; r < 6; r++) {
                __m512 t = _mm512_set1_ps(a1[r]);
                acc[12 + 2 * r] = _mm512_fmadd_ps(t, b0, acc[12 + 2 * r]);
                acc[12 + 2 * r + 1] = _mm512_fmadd_ps(t, b1, acc[12 + 2 * r + 1]);
            }
            a1 += 6;
        }
        a0 += 6;
        b += ldb;
    }
#pragma unroll
    for (int r = 0; r < 24; r++) out[r] = acc[r];
}

// C[rows × cols] (rows ≤ 12, or ≤ 6 without `two`; cols ≤ 32) = tile_12x32, activated.
INLINE AVX512 void kernel_12x32(long k, const float *a0, const float *a1, int two, const float *b, long ldb,
                                const float *const *indirect, long b_column, int cols, float *c, long ldc, int rows,
                                const float *bias_rows, long prefetch_ahead, int act, __m512 lo, __m512 hi) {
    __m512 acc[24];
    __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (1u << (cols - 16)) - 1);
    if (cols == 32)
        tile_12x32(k, a0, a1, two, b, ldb, indirect, b_column, 1, m0, m1, bias_rows, rows, prefetch_ahead, acc);
    else
        tile_12x32(k, a0, a1, two, b, ldb, indirect, b_column, 0, m0, m1, bias_rows, rows, 0, acc);
    for (int r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, act16(acc[2 * r], act, lo, hi));
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, act16(acc[2 * r + 1], act, lo, hi));
    }
}

// Panels p and p + 1 (when `two`) of packed A against columns j ..< j + cols.
INLINE AVX512 void panel_pair(long m, long k, const float *packed_a, long p, int two, const float *b, long ldb,
                              const float *const *indirect, long j, int cols, float *c, long ldc, const float *bias,
                              long prefetch_ahead, int act, __m512 lo, __m512 hi) {
    long row0 = p * 6;
    long span = two ? 12 : 6;
    int rows = (int)(m - row0 < span ? m - row0 : span);
    const float *a0 = packed_a + p * k * 6;
    const float *bias_rows = bias ? bias + row0 : NULL;
    float *dst = c + row0 * ldc + j;
    if (indirect) {
        if (two) kernel_12x32(k, a0, a0 + k * 6, 1, NULL, 0, indirect, j, cols, dst, ldc, rows, bias_rows, 0, act, lo, hi);
        else kernel_12x32(k, a0, NULL, 0, NULL, 0, indirect, j, cols, dst, ldc, rows, bias_rows, 0, act, lo, hi);
    } else {
        if (two) kernel_12x32(k, a0, a0 + k * 6, 1, b + j, ldb, NULL, 0, cols, dst, ldc, rows, bias_rows, prefetch_ahead, act, lo, hi);
        else kernel_12x32(k, a0, NULL, 0, b + j, ldb, NULL, 0, cols, dst, ldc, rows, bias_rows, prefetch_ahead, act, lo, hi);
    }
}

AVX512 void sl_gemm_packed_a_12x32(long m, long k, const float *packed_a, long panel_begin, long panel_end, const float *b,
                                   long ldb, long n, float *c, long ldc, const float *bias, int act, float flo, float fhi) {
    __m512 lo = _mm512_set1_ps(flo), hi = _mm512_set1_ps(fhi);
    // Column chunks whose rows of B stay in L2 while every pair of weight panels passes over
    // them (as gemm.c); the first pass over a chunk requests each row of B three tiles ahead.
    long chunk = (65536 / (k > 0 ? k : 1)) / 32 * 32;
    if (chunk < 32) chunk = 32;
    for (long n0 = 0; n0 < n; n0 += chunk) {
        long n1 = n0 + chunk < n ? n0 + chunk : n;
        for (long p = panel_begin; p < panel_end; p += 2) {
            int two = p + 1 < panel_end;
            for (long j = n0; j < n1; j += 32) {
                int cols = (int)(n1 - j < 32 ? n1 - j : 32);
                long ahead = p == panel_begin && j + 128 <= n1 ? 96 : 0;
                panel_pair(m, k, packed_a, p, two, b, ldb, NULL, j, cols, c, ldc, bias, ahead, act, lo, hi);
            }
        }
    }
}

AVX512 void sl_conv_indirect_row_12x32(long m, long k, const float *packed_a, long panel_begin, long panel_end,
                                       const float *const *rows, long ow, float *c, long ldc, const float *bias, int act,
                                       float flo, float fhi) {
    __m512 lo = _mm512_set1_ps(flo), hi = _mm512_set1_ps(fhi);
    for (long p = panel_begin; p < panel_end; p += 2) {
        int two = p + 1 < panel_end;
        for (long j = 0; j < ow; j += 32) {
            int cols = (int)(ow - j < 32 ? ow - j : 32);
            panel_pair(m, k, packed_a, p, two, NULL, 0, rows, j, cols, c, ldc, bias, 0, act, lo, hi);
        }
    }
}

AVX512 void sl_expand_interleaved_7x16(const float *packed_x, long positions, long width, long channels, const float *packed_w,
                                       long panel, const float *bias, int act, float flo, float fhi, float *planes,
                                       long group_floats, long padded_width, long pad_top, long pad_left) {
    __m512 lo = _mm512_set1_ps(flo), hi = _mm512_set1_ps(fhi);
    const float *bp = packed_w + panel * channels * 16;
    const float *bias_cols = bias ? bias + panel * 16 : NULL;
    long row_panels = (positions + 6) / 7;
    for (long p = 0; p < row_panels; p += 2) {
        int two = p + 1 < row_panels;
        long p0 = p * 7;
        int rows = (int)(positions - p0 < (two ? 14 : 7) ? positions - p0 : (two ? 14 : 7));
        __m512 acc[14];
        if (two) tile_14x16(channels, packed_x + p * channels * 7, 1, bp, bias_cols, 0xFFFF, act, lo, hi, acc);
        else tile_14x16(channels, packed_x + p * channels * 7, 0, bp, bias_cols, 0xFFFF, act, lo, hi, acc);
        long y = p0 / width, x = p0 % width;
        for (int r = 0; r < rows; r++) {
            // Lanes 0-7 are channels of the first group, 8-15 of the second.
            float *dst = planes + ((y + pad_top) * padded_width + x + pad_left) * 8;
            _mm256_storeu_ps(dst, _mm512_castps512_ps256(acc[r]));
            _mm256_storeu_ps(dst + group_floats, sl_upper256(acc[r]));
            if (++x == width) { x = 0; y++; }
        }
    }
}
#endif
