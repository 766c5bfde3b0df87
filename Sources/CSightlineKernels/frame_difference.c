// The region selector's pixel loops (see FrameDifference.swift): plain C loops the compiler
// vectorises, which the same loops in Swift did not (about 1 ms per 720p frame before).
#include "CSightlineKernels.h"
#include <stdint.h>
_Static_assert(sizeof(short) == sizeof(int16_t) && sizeof(int) == sizeof(int32_t), "header types");

/// Luma change of one row of packed pixels (bpp bytes each). Inlined with constant bpp and
/// channel offsets for RGB and BGR, where the stride-3 loop becomes shuffles and vector
/// arithmetic; called with run-time ones for other layouts.
static inline __attribute__((always_inline)) void luma_row(const uint8_t *pn, const uint8_t *po, long width, int16_t *row,
                                                           const int bpp, const int red, const int green, const int blue) {
    for (long x = 0; x < width; x++) {
        int r = (int)pn[bpp * x + red] - (int)po[bpp * x + red];
        int g = (int)pn[bpp * x + green] - (int)po[bpp * x + green];
        int b = (int)pn[bpp * x + blue] - (int)po[bpp * x + blue];
        row[x] = (int16_t)((77 * r + 150 * g + 29 * b) >> 8);
    }
}

/// Three bytes a pixel in RGB or BGR order: the layouts with vectorised row loops.
static inline int is_packed_rgb(int bpp, int red, int green, int blue) {
    return bpp == 3 && green == 1 && ((red == 0 && blue == 2) || (red == 2 && blue == 0));
}

#if SL_X86
#define AVX2 __attribute__((target("avx2,fma")))
static AVX2 void luma_row3_avx2(const uint8_t *pn, const uint8_t *po, long width, int16_t *row, int bgr) {
    if (bgr) luma_row(pn, po, width, row, 3, 2, 1, 0);
    else luma_row(pn, po, width, row, 3, 0, 1, 2);
}
#endif
static void luma_row3_portable(const uint8_t *pn, const uint8_t *po, long width, int16_t *row, int bgr) {
    if (bgr) luma_row(pn, po, width, row, 3, 2, 1, 0);
    else luma_row(pn, po, width, row, 3, 0, 1, 2);
}

long sl_sampled_luma_difference(const uint8_t *new_pixels, const uint8_t *old_pixels, long width, long height, int bpp,
                                int red, int green, int blue, int16_t *differences, int16_t *row, bool avx2) {
    long sw = (width + 1) / 2, sh = (height + 1) / 2;
    long total = 0;
    int packed_rgb = is_packed_rgb(bpp, red, green, blue);
    for (long sy = 0; sy < sh; sy++) {
        const uint8_t *pn = new_pixels + sy * 2 * width * bpp, *po = old_pixels + sy * 2 * width * bpp;
        int16_t *line = differences + sy * sw;
        // Every pixel of the row (vectorised), then every second one kept.
        if (bpp == 1) {
            for (long x = 0; x < width; x++) row[x] = (int16_t)((int)pn[x] - (int)po[x]);
        } else if (packed_rgb) {
#if SL_X86
            if (avx2) luma_row3_avx2(pn, po, width, row, red == 2);
            else
#endif
                luma_row3_portable(pn, po, width, row, red == 2);
        } else {
            luma_row(pn, po, width, row, bpp, red, green, blue);
        }
        int row_total = 0;
        for (long sx = 0; sx < sw; sx++) {
            int16_t d = row[2 * sx];
            line[sx] = d;
            row_total += d;
        }
        total += row_total;
    }
    return total;
}

void sl_moved_samples(const int16_t *differences, long width, long height, long tile_size, long columns,
                      long shift, long limit, int32_t *counts, int32_t *moved) {
    long sw = (width + 1) / 2, sh = (height + 1) / 2;
    int low = (int)(shift - limit), high = (int)(shift + limit);
    for (long sy = 0; sy < sh; sy++) {
        long tile_row = (sy * 2 / tile_size) * columns;
        const int16_t *line = differences + sy * sw;
        long sx = 0;
        for (long column = 0; sx < sw; column++) {
            // Tile `column` covers pixels below (column + 1)·tile_size: samples (pixel 2·sx) below that.
            long end = ((column + 1) * tile_size + 1) / 2;
            if (end > sw) end = sw;
            int count = 0;
            for (long i = sx; i < end; i++) count += (line[i] > high) | (line[i] < low);
            counts[tile_row + column] += (int32_t)(end - sx);
            moved[tile_row + column] += count;
            sx = end;
        }
    }
}

/// Luma of one packed row (BT.601 integer weights, >> 8 per pixel, as the thumbnail's
/// reference), inlined with constant offsets for RGB and BGR where it vectorises.
static inline __attribute__((always_inline)) void luma_of_row(const uint8_t *p, long width, uint16_t *luma, const int bpp,
                                                              const int red, const int green, const int blue) {
    for (long x = 0; x < width; x++)
        luma[x] = (uint16_t)((77 * p[bpp * x + red] + 150 * p[bpp * x + green] + 29 * p[bpp * x + blue]) >> 8);
}

#if SL_X86
static AVX2 void luma_of_row3_avx2(const uint8_t *p, long width, uint16_t *luma, int bgr) {
    if (bgr) luma_of_row(p, width, luma, 3, 2, 1, 0);
    else luma_of_row(p, width, luma, 3, 0, 1, 2);
}
#endif
static void luma_of_row3_portable(const uint8_t *p, long width, uint16_t *luma, int bgr) {
    if (bgr) luma_of_row(p, width, luma, 3, 2, 1, 0);
    else luma_of_row(p, width, luma, 3, 0, 1, 2);
}

void sl_luma_cell_sums(const uint8_t *pixels, long width, long y0, long y1, int bpp, int red, int green, int blue,
                       const long *x_start, const long *x_end, long cells, long *sums, uint16_t *luma, bool avx2) {
    int packed_rgb = is_packed_rgb(bpp, red, green, blue);
    for (long y = y0; y < y1; y++) {
        const uint8_t *row = pixels + y * width * bpp;
        if (bpp == 1) {
            for (long x = 0; x < width; x++) luma[x] = row[x];
        } else if (packed_rgb) {
#if SL_X86
            if (avx2) luma_of_row3_avx2(row, width, luma, red == 2);
            else
#endif
                luma_of_row3_portable(row, width, luma, red == 2);
        } else {
            luma_of_row(row, width, luma, bpp, red, green, blue);
        }
        for (long c = 0; c < cells; c++) {
            long sum = 0;
            for (long x = x_start[c]; x < x_end[c]; x++) sum += luma[x];
            sums[c] += sum;
        }
    }
}
