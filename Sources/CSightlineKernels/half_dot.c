// Dot products of one float32 query against many float16 rows: the full scan behind vector
// search (SightlineIndex keeps every shot's vector in memory as float16, half the bytes of
// float32, and the scan is bound by memory bandwidth). The portable loop converts each half by
// its bits; the AVX2 twin converts eight at a time with F16C and accumulates with FMA.
#include <stdint.h>
#include <string.h>
#include "CSightlineKernels.h"
#if SL_X86
#include <immintrin.h>
#endif

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int shift = 0;
            while (!(mantissa & 0x400)) { mantissa <<= 1; shift++; }
            mantissa &= 0x3ff;
            bits = sign | ((uint32_t)(127 - 15 - shift + 1) << 23) | (mantissa << 13);
        }
    } else if (exponent == 31) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void dot_f16_portable(const uint16_t *rows, long n, long dim, const float *query, float *out) {
    for (long r = 0; r < n; r++) {
        const uint16_t *row = rows + r * dim;
        float sum = 0;
        for (long i = 0; i < dim; i++) sum += half_to_float(row[i]) * query[i];
        out[r] = sum;
    }
}

#if SL_X86
#define F16C_AVX2 __attribute__((target("avx2,fma,f16c")))

F16C_AVX2 static void dot_f16_avx2(const uint16_t *rows, long n, long dim, const float *query, float *out) {
    long vectorised = dim & ~7L;
    for (long r = 0; r < n; r++) {
        const uint16_t *row = rows + r * dim;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        long i = 0;
        for (; i + 16 <= vectorised; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + i))), _mm256_loadu_ps(query + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + i + 8))), _mm256_loadu_ps(query + i + 8), a1);
        }
        for (; i < vectorised; i += 8)
            a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + i))), _mm256_loadu_ps(query + i), a0);
        __m256 a = _mm256_add_ps(a0, a1);
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        float sum = _mm_cvtss_f32(s);
        for (; i < dim; i++) sum += half_to_float(row[i]) * query[i];
        out[r] = sum;
    }
}

static bool has_f16c(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = sl_has_avx2_fma() && __builtin_cpu_supports("f16c");
    }
    return cached;
}
#endif

bool sl_has_f16c(void) {
#if SL_X86
    return has_f16c();
#else
    return false;
#endif
}

void sl_dot_f16_rows(const uint16_t *rows, long n, long dim, const float *query, float *out, bool vectorised) {
#if SL_X86
    if (vectorised && has_f16c()) {
        dot_f16_avx2(rows, n, dim, query, out);
        return;
    }
#endif
    dot_f16_portable(rows, n, dim, query, out);
}
