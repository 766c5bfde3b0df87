// Off x86, the kernels of x86/ compile to nothing; these stand in for them so the package links.
// None is ever called: sl_has_avx2_fma() and sl_has_avx512() are false there, so KernelConfig
// reports the portable instruction set and every caller takes the portable Swift kernel.
#include "CSightlineKernels.h"
#if !SL_X86
#define UNREACHABLE __builtin_trap()

void sl_depthwise_fill(const float *plane, long height, long width, long pad_top, long pad_left, int s, float *scratch,
                       long phase_width) { UNREACHABLE; }
void sl_depthwise_plane(const float *scratch, long phase_width, int s, long sh, int kh, int kw, const float *weight, float bias,
                        int act, float lo, float hi, float *out, long oh, long ow) { UNREACHABLE; }
void sl_depthwise8_fill(const float *planes, long plane_stride, int lanes, long height, long width, long pad_top, long pad_left,
                        float *scratch, long padded_width) { UNREACHABLE; }
void sl_depthwise8_planes(const float *scratch, long padded_width, int s, long sh, int kh, int kw, const float *weight8,
                          const float *bias8, int act, float lo, float hi, float *out, long plane_stride, int lanes, long oh,
                          long ow) { UNREACHABLE; }
void sl_depthwise16_pair(const float *scratch, long group_floats, long padded_width, int s, long sh, int kh, int kw,
                         const float *weight8_first, const float *weight8_second, int act, float lo, float hi, float *out,
                         long plane_stride, long oh, long ow) { UNREACHABLE; }
void sl_maxpool_plane(const float *scratch, long phase_width, int s, long sh, int kh, int kw, float *out, long oh, long ow) {
    UNREACHABLE;
}
void sl_gemm_packed_a(long m, long k, const float *packed_a, long panel_begin, long panel_end, const float *b, long ldb, long n,
                      float *c, long ldc, const float *bias, int act, float lo, float hi, float *scratch) { UNREACHABLE; }
void sl_conv_indirect_row(long m, long k, const float *packed_a, long panel_begin, long panel_end, const float *const *rows,
                          long ow, float *c, long ldc, const float *bias, int act, float lo, float hi) { UNREACHABLE; }
void sl_gemm_packed_a_12x32(long m, long k, const float *packed_a, long panel_begin, long panel_end, const float *b, long ldb,
                            long n, float *c, long ldc, const float *bias, int act, float lo, float hi) { UNREACHABLE; }
void sl_conv_indirect_row_12x32(long m, long k, const float *packed_a, long panel_begin, long panel_end,
                                const float *const *rows, long ow, float *c, long ldc, const float *bias, int act, float lo,
                                float hi) { UNREACHABLE; }
void sl_gemm_packed_b_6x16(long m, long k, const float *a, long lda, const float *packed_b, long n, long panel_begin,
                           long panel_end, float *c, long ldc, const float *bias, int act, float lo, float hi,
                           float *scratch) { UNREACHABLE; }
void sl_gemm_packed_b_7x16(long m, long k, const float *a, long lda, const float *packed_b, long n, long panel_begin,
                           long panel_end, float *c, long ldc, const float *bias, int act, float lo, float hi,
                           float *scratch) { UNREACHABLE; }
void sl_pointwise_transposed(long positions, long position_begin, long position_end, long channels, const float *x,
                             const float *packed_w, long out_channels, long panel_begin, long panel_end, float *out,
                             const float *bias, int act, float lo, float hi, float *scratch) { UNREACHABLE; }
void sl_pointwise_transposed_7x16(long batch, long positions, long position_begin, long position_end, long channels,
                                  const float *x, const float *packed_w, long out_channels, long panel_begin, long panel_end,
                                  float *out, const float *bias, int act, float lo, float hi, float *scratch,
                                  long block_panels) { UNREACHABLE; }
void sl_residual_layer_norm(float *x, const float *residual, long rows, long width, const float *gamma, const float *beta,
                            float epsilon) { UNREACHABLE; }
void sl_pack_columns7(const float *x, long rows, long k, long ldx, float *panel) { UNREACHABLE; }
void sl_pack_positions7(const float *x, long positions, long channels, long panel_begin, long panel_end, float *packed) {
    UNREACHABLE;
}
void sl_expand_interleaved_7x16(const float *packed_x, long positions, long width, long channels, const float *packed_w,
                                long panel, const float *bias, int act, float lo, float hi, float *planes, long group_floats,
                                long padded_width, long pad_top, long pad_left) { UNREACHABLE; }
void sl_pack_positions6(const float *x, long positions, long channels, long panel_begin, long panel_end, float *packed) {
    UNREACHABLE;
}
void sl_expand_interleaved_6x16(const float *packed_x, long positions, long width, long channels, const float *packed_w,
                                long panel, const float *bias, int act, float lo, float hi, float *planes, long group_floats,
                                long padded_width, long pad_top, long pad_left) { UNREACHABLE; }
void sl_winograd_input_row(const float *image, long channels, long height, long width, long pad_top, long pad_left, long ty,
                           long tiles_w, float *v, long n, float *scratch) { UNREACHABLE; }
void sl_winograd_output_row(const float *products, long m, long n, long tiles_w, float *out_image, long oh, long ow, long ty,
                            const float *bias, int act, float lo, float hi) { UNREACHABLE; }
void sl_winograd43_input_row(const float *image, long channels, long height, long width, long pad_top, long pad_left, long ty,
                             long tiles_w, float *v, long n, float *scratch) { UNREACHABLE; }
void sl_winograd43_output_row(const float *products, long m, long n, long tiles_w, float *out_image, long oh, long ow, long ty,
                              const float *bias, int act, float lo, float hi) { UNREACHABLE; }
#endif
