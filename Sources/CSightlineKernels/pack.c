// Panel packing for the GEMM kernels (gemm.c, gemm512.c) and their callers: the one file
// both tile kernels take their packed operands from, so neither calls the other.
#include "CSightlineKernels.h"
#include "pack.h"
#if SL_X86
#include <immintrin.h>
#endif

void sl_pack_panels(const float *a, long m, long k, long lda, int width, float *packed) {
    long panels = (m + width - 1) / width;
    for (long p = 0; p < panels; p++) {
        float *dst = packed + p * k * width;
        for (long kk = 0; kk < k; kk++) {
            for (long r = 0; r < width; r++) {
                long row = p * width + r;
                dst[kk * width + r] = row < m ? a[row * lda + kk] : 0.0f;
            }
        }
    }
}

void sl_pack_rows6(const float *a, long m, long k, float *packed) { sl_pack_panels(a, m, k, k, 6, packed); }

void sl_pack_linear16(const float *w, long n, long k, float *packed) { sl_pack_panels(w, n, k, k, 16, packed); }

#if SL_X86
#define AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))

AVX512 void sl_pack_columns7(const float *x, long rows, long k, long ldx, float *panel) {
    __mmask8 mask = (__mmask8)((1u << rows) - 1);
    for (long kk = 0; kk < k; kk++)
        _mm256_mask_storeu_ps(panel + kk * 7, 0x7F, _mm256_maskz_loadu_ps(mask, x + kk * ldx));
}

AVX512 void sl_pack_positions7(const float *x, long positions, long channels, long panel_begin, long panel_end, float *packed) {
    for (long p = panel_begin; p < panel_end; p++) {
        long p0 = p * 7;
        sl_pack_columns7(x + p0, positions - p0 < 7 ? positions - p0 : 7, channels, positions, packed + p * channels * 7);
    }
}
#endif
