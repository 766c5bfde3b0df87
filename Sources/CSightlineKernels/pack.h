// Packing shared by the AVX2 (x86/avx2/gemm.c) and AVX-512 (x86/avx512/gemm512.c) GEMM loops;
// defined in pack.c.
#ifndef SIGHTLINE_PACK_H
#define SIGHTLINE_PACK_H

/// Rows of A (row stride lda) as zero-padded panels of `width` rows, [ceil(m/width)][k][width]:
/// panels of 6 (or 7) rows are the left operand of the 6×16 (7×16) kernel; panels of 16 rows of
/// a matrix stored transposed (a Linear weight, [n × k]) are its right operand.
void sl_pack_panels(const float *a, long m, long k, long lda, int width, float *packed);

/// `rows` (≤ 7) columns of x (k rows, stride ldx) as one 7-wide panel [k][7], zero past `rows`
/// (AVX-512 masked loads; only when `sl_has_avx512()`).
void sl_pack_columns7(const float *x, long rows, long k, long ldx, float *panel);
#endif
