#ifndef SIGHTLINE_CFFMPEG_SHIM_H
#define SIGHTLINE_CFFMPEG_SHIM_H

// Swift cannot import function-like or expression macros, so the few FFmpeg macros we
// rely on are re-exposed here as constants and inline functions.

#include <errno.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libavutil/dict.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>
#include <libswresample/swresample.h>
#include <libavutil/channel_layout.h>

/// AVERROR(e): FFmpeg's negative error code for a POSIX errno value.
static inline int sl_averror(int posix_errno) { return AVERROR(posix_errno); }

static const int SL_AVERROR_EOF = AVERROR_EOF;
static const int SL_AVERROR_EAGAIN = AVERROR(EAGAIN);
static const int SL_AVERROR_EXIT = AVERROR_EXIT;
static const int SL_AVERROR_INVALIDDATA = AVERROR_INVALIDDATA;
static const int SL_AVERROR_DECODER_NOT_FOUND = AVERROR_DECODER_NOT_FOUND;
static const int SL_AVERROR_STREAM_NOT_FOUND = AVERROR_STREAM_NOT_FOUND;
static const int64_t SL_AV_NOPTS_VALUE = AV_NOPTS_VALUE;
static const int SL_AV_PKT_FLAG_KEY = AV_PKT_FLAG_KEY;
static const int SL_AV_PKT_FLAG_CORRUPT = AV_PKT_FLAG_CORRUPT;
/// Fixed-quality JPEG: qscale is given as a lambda with the QSCALE flag.
static const int SL_AV_CODEC_FLAG_GLOBAL_HEADER = AV_CODEC_FLAG_GLOBAL_HEADER;
static const int SL_FF_QP2LAMBDA = FF_QP2LAMBDA;
static const int SL_AV_CODEC_FLAG_QSCALE = AV_CODEC_FLAG_QSCALE;

/// av_err2str without the compound literal Swift cannot import: writes into `buf`.
static inline const char *sl_av_err2str(int errnum, char *buf, size_t size) {
    return av_make_error_string(buf, size, errnum);
}

/// Frame flags moved from fields to `flags` bits across FFmpeg versions; hide that here.
static inline int sl_frame_is_keyframe(const AVFrame *frame) {
#ifdef AV_FRAME_FLAG_KEY
    return (frame->flags & AV_FRAME_FLAG_KEY) != 0;
#else
    return frame->key_frame;
#endif
}

static inline int sl_frame_is_corrupt(const AVFrame *frame) {
    return (frame->flags & AV_FRAME_FLAG_CORRUPT) != 0 || frame->decode_error_flags != 0;
}

/// 1 when the frame's first plane is 8-bit luma, one byte per pixel, read in memory (the planar
/// and semi-planar YUV formats and gray8): the adaptive sampler reads it directly.
static inline int sl_frame_has_luma8(const AVFrame *frame) {
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)frame->format);
    if (!d || d->nb_components < 1) return 0;
    if (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)) return 0;
    if (d->comp[0].plane != 0 || d->comp[0].depth != 8 || d->comp[0].step != 1 || d->comp[0].shift != 0) return 0;
    return frame->data[0] != NULL && frame->linesize[0] >= frame->width;
}

/// Frame duration in the stream time base; the field was renamed in FFmpeg 6.
static inline int64_t sl_frame_duration(const AVFrame *frame) {
#if LIBAVUTIL_VERSION_MAJOR >= 58
    return frame->duration;
#else
    return frame->pkt_duration;
#endif
}

/// The AVIOInterruptCB fields, set from Swift without touching the struct layout.
static inline void sl_set_interrupt_callback(AVFormatContext *ctx, int (*callback)(void *), void *opaque) {
    ctx->interrupt_callback.callback = callback;
    ctx->interrupt_callback.opaque = opaque;
}

/// What sl_io_open_input_only saw on one context (owned by the Swift side, which outlives the
/// context: avformat_open_input frees the context when it fails).
typedef struct {
    int opened;
    int refused;
} sl_open_record;

/// An io_open callback for local files: it opens the input itself and refuses every further
/// open a demuxer asks for (an HLS playlist's segments, a MOV data reference). A file named
/// .mp4 that is really a playlist could otherwise make us read any other file on the machine.
static inline int sl_io_open_input_only(struct AVFormatContext *s, AVIOContext **pb, const char *url,
                                        int flags, AVDictionary **options) {
    sl_open_record *record = (sl_open_record *)s->opaque;
    if (record->opened) {
        record->refused = 1;
        return AVERROR(EPERM);
    }
    record->opened = 1;
    return avio_open2(pb, url, flags, &s->interrupt_callback, options);
}

static inline void sl_restrict_to_input(AVFormatContext *s, sl_open_record *record) {
    s->opaque = record;
    s->io_open = sl_io_open_input_only;
}

#endif
