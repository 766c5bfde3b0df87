import CFFmpeg
import COpenBLAS
import CZeroMQ
import Testing

/// Each system-library target links and its shims behave like the C macros they stand for.
@Suite struct SystemLibraryLinkTests {
    @Test func ffmpegLibrariesAndShims() {
        #expect(avformat_version() > 0 && avcodec_version() > 0 && avutil_version() > 0 && swscale_version() > 0)
        #expect(sl_averror(2) == -2)
        #expect(SL_AVERROR_EOF != 0 && SL_AV_NOPTS_VALUE == Int64.min)
        var buffer = [CChar](repeating: 0, count: 128)
        let text = buffer.withUnsafeMutableBufferPointer { String(cString: sl_av_err2str(SL_AVERROR_EOF, $0.baseAddress!, $0.count)) }
        #expect(text == "End of file")
    }

    @Test func openBLASMultiplies() {
        let a: [Float] = [1, 2, 3, 4]  // 2x2 row-major
        let b: [Float] = [5, 6, 7, 8]
        var c: [Float] = [0, 0, 0, 0]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1, a, 2, b, 2, 0, &c, 2)
        #expect(c == [19, 22, 43, 50])
    }

    @Test func zeroMQReportsVersion() {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        #expect(major == 4)
    }
}
