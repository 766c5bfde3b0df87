#ifndef SIGHTLINE_CKERNELS_H
#define SIGHTLINE_CKERNELS_H
// Inner loops of SightlineKernels written with AVX2/FMA and AVX-512 intrinsics: Swift has no way
// to ask for a vector width or fused multiply-add explicitly, and its SIMD types lose registers
// in loops like these (measured: the same depthwise loop in Swift SIMD8 ran 2-3x slower).
//
// Layout: cpu_features.c probes the CPU; pack.c packs GEMM operands; frame_difference.c is
// portable C with an AVX2 twin; x86/avx2/ and x86/avx512/ hold the per-ISA kernels, each
// function compiled for its instruction set only. Callers (SightlineKernels, through
// KernelConfig) check the instruction set first and otherwise take the portable Swift kernel.
// On other architectures the x86 files compile to nothing and unavailable.c stands in for
// their functions (never called: KernelConfig reports no AVX there). The Swift wrappers own
// threading, memory and the reference twins; these functions only compute.

#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#define SL_X86 1
#else
#define SL_X86 0
#endif

/// True when the CPU runs AVX2 and FMA (checked once; false off x86).
bool sl_has_avx2_fma(void);
/// AVX-512 F and VL (and AVX2/FMA): the 7×16 GEMM tiles of gemm512.c may run.
bool sl_has_avx512(void);

/// Activation codes shared by the C kernels: none, relu, clip(lo, hi), hard-swish, GELU (erf form).
enum { SL_ACT_NONE = 0, SL_ACT_RELU = 1, SL_ACT_CLIP = 2, SL_ACT_HARDSWISH = 3, SL_ACT_GELU_ERF = 4 };

/// Depthwise convolution of one plane, dilation 1, horizontal stride s (1 or 2), vertical stride sh.
///
/// `scratch` holds the zero-padded plane split into s column phases,
/// scratch[(y*s + phase)*phase_width + j] = padded[y][j*s + phase], with at least
/// (oh-1)*sh + kh + 3*sh rows (three spare zero rows' worth: the narrow part computes four
/// output rows at once) and phase_width >= round_up(ow, 8) + (kw-1)/s + 1 columns, so every
/// tap of 8 neighbouring outputs is one contiguous load. Pad cells must be zero; only the
/// image cells are written by `sl_depthwise_fill`, so the same scratch serves every plane of
/// one geometry. out is [oh][ow].
void sl_depthwise_fill(const float *plane, long height, long width, long pad_top, long pad_left,
                       int s, float *scratch, long phase_width);
void sl_depthwise_plane(const float *scratch, long phase_width, int s, long sh, int kh, int kw,
                        const float *weight, float bias, int act, float lo, float hi,
                        float *out, long oh, long ow);

/// Depthwise convolution of eight planes at once, channels in the vector lanes (dilation 1,
/// horizontal stride s of 1 or 2, any vertical stride sh, kernel width kw of 1…8).
///
/// `sl_depthwise8_fill` interleaves `lanes` (≤ 8) planes, each height × width at plane_stride
/// floats apart, into scratch[(y + pad_top)·padded_width + x + pad_left][8]; missing lanes are
/// zero. Only image cells are written, so pad cells must be zeroed once and the same scratch
/// serves every group of one geometry. The scratch needs max(height + pads, (oh−1)·sh + kh) rows
/// and padded_width ≥ (round_up(ow, 8) − 1)·s + kw columns (whole blocks of 8 outputs are read).
/// `sl_depthwise8_planes` writes the `lanes` output planes (oh × ow, plane_stride apart) from
/// weight8 [kh·kw][8] and bias8 [8] (the group's weights and biases interleaved), activated.
void sl_depthwise8_fill(const float *planes, long plane_stride, int lanes, long height, long width,
                        long pad_top, long pad_left, float *scratch, long padded_width);
void sl_depthwise8_planes(const float *scratch, long padded_width, int s, long sh, int kh, int kw,
                          const float *weight8, const float *bias8, int act, float lo, float hi,
                          float *out, long plane_stride, int lanes, long oh, long ow);
/// `sl_depthwise8_planes` for two full groups at once on AVX-512 (depthwise16.c; only when
/// `sl_has_avx512()`): the second group's scratch sits group_floats after the first's, its
/// weights (weight8 layout, taps then bias) at weight8_second, and its 8 output planes follow
/// the first group's (channel c of the 16 at out + c·plane_stride). kh·kw ≤ 64. Same results
/// as two calls of the eight-lane kernel.
void sl_depthwise16_pair(const float *scratch, long group_floats, long padded_width, int s, long sh, int kh, int kw,
                         const float *weight8_first, const float *weight8_second, int act, float lo, float hi,
                         float *out, long plane_stride, long oh, long ow);

/// Max pooling of one plane over the same scratch layout as `sl_depthwise_plane`, whose pad
/// cells must hold -infinity (so they never win).
void sl_maxpool_plane(const float *scratch, long phase_width, int s, long sh, int kh, int kw,
                      float *out, long oh, long ow);

/// A [m × k] row-major matrix as panels of 6 rows, [ceil(m/6)][k][6], zero-padded: the
/// left operand of `sl_gemm_packed_a`, packed once (a convolution's weights).
void sl_pack_rows6(const float *a, long m, long k, float *packed);

/// C[m × n] = A · B + bias (per row of C), activated, for row panels panel_begin..<panel_end of
/// A (rows 6·panel_begin ..< min(m, 6·panel_end)). A is packed by `sl_pack_rows6`; B is read in
/// place, [k × n] with row stride ldb (a 1×1 convolution's input planes); C has row stride ldc.
/// scratch holds k·16 floats (the last, partial column block). Every element of the selected
/// rows of C is written (no accumulation).
void sl_gemm_packed_a(long m, long k, const float *packed_a, long panel_begin, long panel_end,
                      const float *b, long ldb, long n, float *c, long ldc, const float *bias,
                      int act, float lo, float hi, float *scratch);

/// One output row (ow positions) of a convolution as an implicit im2col: C[m × ow] (row stride
/// ldc) = A · B for row panels panel_begin..<panel_end of A (packed by `sl_pack_rows6`), where
/// row kk of B is rows[kk][0 ..< ow], each readable up to round_up(ow, 16) floats. Bias per row
/// of C, activated (codes as above).
void sl_conv_indirect_row(long m, long k, const float *packed_a, long panel_begin, long panel_end,
                          const float *const *rows, long ow, float *c, long ldc, const float *bias,
                          int act, float lo, float hi);

/// `sl_gemm_packed_a` and `sl_conv_indirect_row` on AVX-512 12×32 tiles (gemm512.c; only when
/// `sl_has_avx512()`): the same operands and bit-identical results, no scratch, and rows of B
/// need not be readable past their last column.
void sl_gemm_packed_a_12x32(long m, long k, const float *packed_a, long panel_begin, long panel_end,
                            const float *b, long ldb, long n, float *c, long ldc, const float *bias,
                            int act, float lo, float hi);
void sl_conv_indirect_row_12x32(long m, long k, const float *packed_a, long panel_begin, long panel_end,
                                const float *const *rows, long ow, float *c, long ldc, const float *bias,
                                int act, float lo, float hi);

/// The right operand B = Wᵀ of `sl_gemm_packed_b_6x16` / `_7x16` for a linear layer with weight W [n × k]
/// (PyTorch's [out × in]), as panels of 16 columns of B, [ceil(n/16)][k][16], zero-padded;
/// packed once.
void sl_pack_linear16(const float *w, long n, long k, float *packed);

/// C[m × n] = A[m × k] (row stride lda) · B + bias (per column of C), activated, for column
/// panels panel_begin..<panel_end of B (columns 16·panel_begin ..< min(n, 16·panel_end)).
/// scratch holds 70·k floats (A packed in blocks of 10 panels). Every element of the selected
/// columns of C is written. `_6x16`: AVX2 tiles (gemm.c); `_7x16`: AVX-512 tiles (gemm512.c,
/// only when `sl_has_avx512()`).
void sl_gemm_packed_b_6x16(long m, long k, const float *a, long lda, const float *packed_b, long n,
                           long panel_begin, long panel_end, float *c, long ldc, const float *bias,
                           int act, float lo, float hi, float *scratch);
void sl_gemm_packed_b_7x16(long m, long k, const float *a, long lda, const float *packed_b, long n,
                           long panel_begin, long panel_end, float *c, long ldc, const float *bias,
                           int act, float lo, float hi, float *scratch);

/// A 1×1 convolution of one image computed transposed on AVX2 6×16 tiles, outᵀ[HW × M] =
/// xᵀ[HW × C] · Wᵀ, for small planes (7×7: 49 positions fill 6-row panels with 8% padding
/// where 16-column panels of positions would waste 23%): x [C × HW] and out [M × HW] stay NCHW,
/// W is packed by `sl_pack_linear16` (W [M × C]). Computes positions position_begin..<position_end
/// of output-channel panels panel_begin..<panel_end; bias per output channel; scratch holds
/// 60·C floats.
void sl_pointwise_transposed(long positions, long position_begin, long position_end, long channels, const float *x,
                             const float *packed_w, long out_channels, long panel_begin, long panel_end, float *out,
                             const float *bias, int act, float lo, float hi, float *scratch);

/// The same on AVX-512 7×16 tiles (gemm512.c; only when `sl_has_avx512()`), for `batch` images
/// at once (x [batch × C × HW], out [batch × M × HW]): the 7-row panels of every image are
/// packed in blocks of `block_panels` (scratch holds block_panels·7·C floats), and each block
/// meets every weight panel once, so weights stream once per block rather than once per image.
void sl_pointwise_transposed_7x16(long batch, long positions, long position_begin, long position_end, long channels,
                                  const float *x, const float *packed_w, long out_channels, long panel_begin,
                                  long panel_end, float *out, const float *bias, int act, float lo, float hi,
                                  float *scratch, long block_panels);

/// The expand half of a fused 1×1 → depthwise block (AVX-512; `sl_has_avx512()`).
/// `sl_pack_positions7` packs row panels panel_begin..<panel_end of xᵀ (x [C × positions]) as
/// 7-row panels [panel][C][7] (zero past the last position). `sl_expand_interleaved_7x16`
/// computes the 16 output channels of weight panel `panel` (W packed by `sl_pack_linear16`) at
/// every position, bias added and activated, and stores them in the depthwise kernel's
/// interleaved layout: channels 16·panel ..< +8 into the padded plane at `planes`, the next 8 at
/// planes + group_floats, position (y, x) of a `width`-wide image at
/// ((y + pad_top)·padded_width + x + pad_left)·8. Pad cells are not written.
void sl_pack_positions7(const float *x, long positions, long channels, long panel_begin, long panel_end, float *packed);
void sl_expand_interleaved_7x16(const float *packed_x, long positions, long width, long channels, const float *packed_w,
                                long panel, const float *bias, int act, float lo, float hi, float *planes,
                                long group_floats, long padded_width, long pad_top, long pad_left);

/// The same on AVX2 (gemm.c; only when `sl_has_avx2_fma()`): `sl_pack_positions6` packs 6-row
/// panels [panel][C][6], and `sl_expand_interleaved_6x16` reads them with the 6×16 tile.
void sl_pack_positions6(const float *x, long positions, long channels, long panel_begin, long panel_end, float *packed);
void sl_expand_interleaved_6x16(const float *packed_x, long positions, long width, long channels, const float *packed_w,
                                long panel, const float *bias, int act, float lo, float hi, float *planes,
                                long group_floats, long padded_width, long pad_top, long pad_left);

/// Winograd F(2×2, 3×3) input transform of tile row `ty` (tiles_w tiles) of one image
/// [channels][height][width]: V[k][ch][j] for k < 16 written at v + (k·channels + ch)·n + j,
/// j = 0..<tiles_w (v already offset to the row's first tile). scratch holds 8·(tiles_w + 16) floats.
void sl_winograd_input_row(const float *image, long channels, long height, long width, long pad_top, long pad_left,
                           long ty, long tiles_w, float *v, long n, float *scratch);

/// The output transform of the same tile row: products[k][o][j] at products + (k·m + o)·n + j
/// (offset to the row's first tile) → output rows 2·ty and 2·ty + 1 of out_image [m][oh][ow],
/// plus bias, activated (codes as above); outputs past oh × ow are not written.
void sl_winograd_output_row(const float *products, long m, long n, long tiles_w, float *out_image, long oh, long ow,
                            long ty, const float *bias, int act, float lo, float hi);

/// Winograd F(4×4, 3×3) input transform of tile row `ty` (4 output rows): V[k][ch][j] for
/// k < 36, laid out as in `sl_winograd_input_row`. scratch holds 24·(tiles_w + 16) floats.
void sl_winograd43_input_row(const float *image, long channels, long height, long width, long pad_top, long pad_left,
                             long ty, long tiles_w, float *v, long n, float *scratch);

/// Its output transform: products[k][o][j] (k < 36) → output rows 4·ty ..< 4·ty + 4 of
/// out_image [m][oh][ow], plus bias, activated; outputs past oh × ow are not written.
void sl_winograd43_output_row(const float *products, long m, long n, long tiles_w, float *out_image, long oh, long ow,
                              long ty, const float *bias, int act, float lo, float hi);

/// The region selector: luma change new − old (BT.601 weights, 8-bit levels) of every second
/// pixel of every second row of two packed frames (bpp bytes per pixel; red/green/blue are
/// byte offsets, ignored when bpp is 1), written as [ceil(h/2)][ceil(w/2)]; returns their sum.
/// `row` is scratch for `width` values. `avx2` (only when `sl_has_avx2_fma()`) takes the AVX2
/// build of the RGB/BGR row loop; the result is the same.
long sl_sampled_luma_difference(const unsigned char *new_pixels, const unsigned char *old_pixels, long width, long height, int bpp,
                                int red, int green, int blue, short *differences, short *row, bool avx2);
/// The luma thumbnail: luma (BT.601 integer weights, >> 8 per pixel; the byte itself when bpp
/// is 1) of rows y0..<y1 of a packed frame `width` pixels wide, added per cell:
/// sums[c] += Σ luma over columns x_start[c]..<x_end[c]. `luma` is scratch for `width` values;
/// `avx2` as for `sl_sampled_luma_difference`.
void sl_luma_cell_sums(const unsigned char *pixels, long width, long y0, long y1, int bpp, int red, int green, int blue,
                       const long *x_start, const long *x_end, long cells, long *sums, unsigned short *luma, bool avx2);
/// Per tile (tile_size pixels, `columns` across), adds how many samples it holds to counts and
/// how many moved by more than `limit` from `shift` to moved.
void sl_moved_samples(const short *differences, long width, long height, long tile_size, long columns,
                      long shift, long limit, int *counts, int *moved);

/// x += residual (when not NULL), then LayerNorm over each of `rows` rows of `width` (AVX2,
/// layer_norm.c; only when `sl_has_avx2_fma()`).
void sl_residual_layer_norm(float *x, const float *residual, long rows, long width, const float *gamma, const float *beta,
                            float epsilon);

/// A spin-wait hint (x86 `pause`): lets the sibling hyper-thread run and saves power in
/// the kernel pool's wait loops.
void sl_cpu_relax(void);

/// AVX2, FMA and F16C: the vectorised twin of sl_dot_f16_rows may run.
bool sl_has_f16c(void);
/// out[r] = dot(rows[r], query) for n rows of dim IEEE float16 values (their bit patterns) and a
/// float32 query. `vectorised` false forces the portable loop (the reference the tests compare).
void sl_dot_f16_rows(const uint16_t *rows, long n, long dim, const float *query, float *out, bool vectorised);

// glibc malloc's arena limit (M_ARENA_MAX; allocator.c); false where the C library is not glibc.
bool sl_set_malloc_arena_max(int arenas);
// glibc malloc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (allocator.c); false where the C library
// is not glibc or it refused a value.
bool sl_set_malloc_thresholds(long mmap_threshold, long trim_threshold);

#endif
