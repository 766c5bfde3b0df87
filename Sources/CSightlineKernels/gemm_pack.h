// Packing shared by the AVX2 (gemm.c) and AVX-512 (gemm512.c) GEMM loops.
#ifndef SIGHTLINE_GEMM_PACK_H
#define SIGHTLINE_GEMM_PACK_H

/// Rows of A (row stride lda) as zero-padded panels of `width` rows, [ceil(m/width)][k][width]:
/// panels of 6 (or 7) rows are the left operand of the 6×16 (7×16) kernel; panels of 16 rows of
/// a matrix stored transposed (a Linear weight, [n × k]) are its right operand.
void sl_pack_panels(const float *a, long m, long k, long lda, int width, float *packed);

/// The AVX-512 twin of gemm.c's packed-B loop, C = A · B on 7×16 tiles; scratch holds 70·k floats.
void sl_gemm_packed_b_7x16(long m, long k, const float *a, long lda, const float *packed_b, long n,
                           long panel_begin, long panel_end, float *c, long ldc,
                           const float *bias, int act, float flo, float fhi, float *scratch);
#endif
