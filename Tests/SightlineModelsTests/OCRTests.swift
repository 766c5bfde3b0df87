import Foundation
import Testing
import SightlineCore
import SightlineMedia
@testable import SightlineModels
import SightlineTestSupport

/// PP-OCRv4 end to end on images rendered at test time (ffmpeg drawtext): varied fonts, sizes,
/// colours, backgrounds and slight rotations, one or two lines each, with known text.
@Suite(.serialized) struct OCRTests {
    struct Sample {
        var lines: [String]
        var font: String
        var size: Int
        var ink: String
        var paper: String
        var degrees: Double
    }

    static let fonts = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf", "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    ]

    static let texts: [[String]] = [
        ["Hello Sightline"], ["Breaking news tonight"], ["Exit 42 North"], ["Open 24 hours"], ["Total 19.99"],
        ["Welcome to the show"], ["Live from Berlin"], ["Chapter 7"], ["No parking"], ["Press start"],
        ["Video understanding", "on plain CPUs"], ["Final score", "3 - 1"], ["Gate B12", "Boarding"], ["Sale ends Friday"],
        ["Temperature 21C"], ["Episode 12 recap"], ["Quarterly report 2026"], ["Stop"], ["Train to Paris", "Platform 9"],
        ["Thank you for watching"], ["Room 404"], ["Subscribe now"], ["Speed limit 50"], ["Kitchen open until 10"],
    ]

    static var samples: [Sample] {
        let palettes = [("black", "white"), ("0x202020", "0xf0e0c0"), ("white", "0x203050"), ("navy", "0xdde8ff"), ("0x602000", "0xffffe0")]
        return texts.enumerated().map { i, lines in
            let (ink, paper) = palettes[i % palettes.count]
            return Sample(lines: lines, font: fonts[i % fonts.count], size: [28, 34, 40, 46][i % 4], ink: ink, paper: paper,
                          degrees: [0, 2, -2, 3, -1, 0][i % 6])
        }
    }

    static func render(_ s: Sample, index: Int) throws -> String {
        let path = Fixtures.shared.directory + "/ocr-\(index).png"
        let lineHeight = s.size * 2
        let width = max(360, s.lines.map(\.count).max()! * s.size * 7 / 10 + 80)
        let height = lineHeight * s.lines.count + 40
        var filters = s.lines.enumerated().map { j, text in
            "drawtext=fontfile=\(s.font):text='\(text)':fontsize=\(s.size):fontcolor=\(s.ink):x=40:y=\(20 + j * lineHeight + s.size / 2)"
        }
        if s.degrees != 0 { filters.append("rotate=\(s.degrees)*PI/180:fillcolor=\(s.paper)") }
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=\(s.paper):s=\(width)x\(height)",
                                "-vf", filters.joined(separator: ","), "-frames:v", "1", path])
        return path
    }

    static func decode(_ path: String) throws -> Frame {
        let source = VideoSource(url: path, options: SourceOptions(output: OutputFormat(pixelFormat: .rgb24)))
        while let event = try source.next() {
            if case .frame(let frame) = event { return frame }
        }
        throw SightlineError.noVideoStream(input: path)
    }

    @Test func readsRenderedText() throws {
        let store = ModelStore()
        try store.fetch(ModelZoo.ppOCR)
        let reader = try TextRecognizer(store: store, threads: 2)
        var expected = 0, exact = 0
        var misses: [String] = []
        for (i, sample) in Self.samples.enumerated() {
            let lines = try reader.read(try Self.decode(try Self.render(sample, index: i)))
            let found = lines.map { $0.text.trimmingCharacters(in: .whitespaces) }
            for want in sample.lines {
                expected += 1
                if found.contains(want) { exact += 1 } else { misses.append("\(want) → \(found)") }
            }
            #expect(lines.allSatisfy { $0.confidence > 0 && $0.corners.count == 4 })
        }
        #expect(Self.samples.count >= 20)
        let rate = Double(exact) / Double(expected)
        #expect(rate >= 0.9, "exact-line match \(exact)/\(expected); misses: \(misses)")
        print("OCR exact-line match: \(exact)/\(expected) = \(rate)")
    }

    @Test func ctcCollapsesRepeatsAndBlanks() {
        // classes: 0 blank, 1 "a", 2 "b"; steps: a a blank a b b blank
        let steps: [[Float]] = [[0, 1, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0]]
        let (text, confidence) = CTCDecoder.greedy(steps.flatMap { $0 }, steps: 7, classes: 3, characters: ["a", "b"])
        #expect(text == "aab")
        #expect(confidence == 1)
    }

    @Test func minAreaRectOfARotatedSquare() {
        let s: Float = 10, a = Float.pi / 6
        let corners = [SIMD2<Float>(-s, -s), SIMD2(s, -s), SIMD2(s, s), SIMD2(-s, s)].map {
            SIMD2($0.x * cos(a) - $0.y * sin(a) + 50, $0.x * sin(a) + $0.y * cos(a) + 40)
        }
        let rect = MinAreaRect(points: convexHull(corners + [SIMD2(50, 40)]))
        #expect(abs(rect.width - 20) < 1e-3 && abs(rect.height - 20) < 1e-3)
        #expect(abs(rect.center.x - 50) < 1e-3 && abs(rect.center.y - 40) < 1e-3)
    }
}
