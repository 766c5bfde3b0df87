import CFFmpeg
import SightlineCore

/// Decodes again, on a decoder of its own, the frames a `mode: nonref` decode skipped between two
/// frames it did decode, so shot-aware sampling can place a cut on its exact frame.
///
/// The packets come from the source's `GOPWindow`, from the keyframe at or before the earlier
/// frame. Reference frames are decoded (the skipped frames are predicted from them), other
/// frames only when they are shown inside the hole; FFmpeg reads `skip_frame` per packet, and one
/// thread keeps that exact. Cuts are rare, so a decoder per hole costs little.
struct SkippedFrameDecoder {
    let stream: UnsafeMutablePointer<AVStream>
    let input: String
    let quality: DecodeQuality
    let outputSize: (width: Int, height: Int)?

    /// The frames shown strictly between `after` and `before` (presentation timestamps), in
    /// presentation order, and how many frames the decoder had to decode for them. Throws when
    /// no decoder opens; a packet the decoder rejects is passed over, as the main decode does.
    func frames(from packets: ArraySlice<GOPWindow<Packet>.Entry>, after: Int64, before: Int64) throws -> (frames: [DecodedFrameBuffer], decoded: Int) {
        let decoder = try VideoDecoder(stream: stream, input: input, mode: .all, threads: 1, lowDelay: false,
                                       quality: quality, outputSize: outputSize)
        var found: [(pts: Int64, frame: DecodedFrameBuffer)] = []
        var decoded = 0
        let scratch = DecodedFrameBuffer()
        func drain() {
            while decoder.receive(into: scratch) >= 0 {
                decoded += 1
                let pts = scratch.pointer.pointee.best_effort_timestamp
                if pts != SL_AV_NOPTS_VALUE, pts > after, pts < before {
                    let kept = DecodedFrameBuffer()
                    av_frame_move_ref(kept.pointer, scratch.pointer)
                    found.append((pts, kept))
                } else {
                    scratch.unref()
                }
            }
        }
        for entry in packets {
            // Packets without a timestamp may be in the hole: decode them rather than miss it.
            let inHole = entry.pts.map { $0 > after && $0 < before } ?? true
            decoder.context.pointee.skip_frame = inHole ? AVDISCARD_DEFAULT : AVDISCARD_NONREF
            var sent = decoder.send(entry.element.pointer)
            if sent == SL_AVERROR_EAGAIN {
                drain()
                sent = decoder.send(entry.element.pointer)
            }
            drain()
        }
        _ = decoder.send(nil)
        drain()
        return (found.sorted { $0.pts < $1.pts }.map(\.frame), decoded)
    }
}
