import Foundation
import Testing
import SightlineCore
@testable import SightlineModels
import SightlineTestSupport

/// The learned visual → text map: its pinned inputs, its solver, and its fit.
@Suite struct VisualTextAlignmentTests {
    /// The committed glosses are what the script derives from Debian's wordnet-base and darknet.
    @Test func theGlossesAreWhatTheScriptDerives() throws {
        let output = try Tool.run("python3", [repositoryRoot + "/Scripts/wordnet/imagenet_glosses.py"]).stdout
        let committed = try String(contentsOfFile: repositoryRoot + "/Sources/SightlineModels/Resources/imagenet-glosses.tsv", encoding: .utf8)
        #expect(output == committed)
        let texts = try VisualTextAlignment.classTexts()
        #expect(texts.count == 1000)
        #expect(texts[0].hasPrefix("tench: freshwater"))
    }

    /// Cholesky against the definition: S·X equals B, on a random SPD system.
    @Test func choleskySolvesWhatItIsGiven() throws {
        var generator = SystemRandomNumberGenerator()
        let n = 40, m = 3
        let r = (0..<(n * n)).map { _ in Double.random(in: -1...1, using: &generator) }
        var s = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { s[i * n + j] = (0..<n).reduce(0.0) { $0 + r[i * n + $1] * r[j * n + $1] } + (i == j ? 0.5 : 0) } }
        let b = (0..<(n * m)).map { _ in Double.random(in: -1...1, using: &generator) }
        var factor = s, x = b
        try CholeskySolver.solve(&factor, size: n, rightHandSides: &x, count: m)
        var worst = 0.0
        for i in 0..<n { for c in 0..<m { worst = max(worst, abs((0..<n).reduce(0.0) { $0 + s[i * n + $1] * x[$1 * m + c] } - b[i * m + c])) } }
        #expect(worst < 1e-8)
        var notSPD = [1.0, 2, 2, 1], rhs = [1.0, 1]
        #expect(throws: CholeskySolver.NotPositiveDefinite.self) { try CholeskySolver.solve(&notSPD, size: 2, rightHandSides: &rhs, count: 1) }
    }

    /// With a small ridge and a true linear relation between rows and targets, the fit finds
    /// the relation: held-out rows map onto their own targets.
    @Test func aFitRecoversALinearMap() throws {
        var generator = SystemRandomNumberGenerator()
        let classes = 120, width = 60, outputs = 8
        let truth = (0..<(outputs * width)).map { _ in Float.random(in: -1...1, using: &generator) }
        let rows = (0..<(classes * width)).map { _ in Float.random(in: -1...1, using: &generator) }
        var targets = [Float](repeating: 0, count: classes * outputs)
        for c in 0..<classes { for o in 0..<outputs { targets[c * outputs + o] = (0..<width).reduce(0) { $0 + truth[o * width + $1] * rows[c * width + $1] } } }
        let fitted = try VisualTextAlignment.fit(head: rows, targets: targets, classes: classes, width: width, outputs: outputs, ridge: 1e-6, centreLogits: false)
        let error = zip(fitted, truth).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        let norm = truth.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        #expect(error / norm < 1e-3, "normalised error \(error / norm)")
        #expect(throws: (any Error).self) { try VisualTextAlignment.fit(head: rows, targets: targets, classes: classes + 1, width: width, outputs: outputs, ridge: 1) }
        #expect(throws: (any Error).self) { try VisualTextAlignment.fit(head: rows, targets: targets, classes: classes, width: width, outputs: outputs, ridge: 0) }
    }

    /// Centring removes what every logit shares: a feature whose logits are all equal (only
    /// a common shift) maps to zero once centred, and not without centring.
    @Test func centredLogitsIgnoreACommonShift() throws {
        var generator = SystemRandomNumberGenerator()
        let classes = 20, width = 40, outputs = 4  // more features than classes: H v = 1 is solvable
        let rows = (0..<(classes * width)).map { _ in Float.random(in: -1...1, using: &generator) }
        let targets = (0..<(classes * outputs)).map { _ in Float.random(in: -1...1, using: &generator) }
        // v = Hᵀ (H Hᵀ)⁻¹ 1: every logit of v is 1.
        var gram = [Double](repeating: 0, count: classes * classes)
        for i in 0..<classes { for j in 0..<classes { gram[i * classes + j] = (0..<width).reduce(0.0) { $0 + Double(rows[i * width + $1]) * Double(rows[j * width + $1]) } } }
        var y = [Double](repeating: 1, count: classes)
        try CholeskySolver.solve(&gram, size: classes, rightHandSides: &y, count: 1)
        let v = (0..<width).map { w in (0..<classes).reduce(0.0) { $0 + Double(rows[$1 * width + w]) * y[$1] } }
        func apply(_ m: [Float]) -> Double {
            (0..<outputs).map { o in (0..<width).reduce(0.0) { $0 + Double(m[o * width + $1]) * v[$1] } }.reduce(0) { $0 + $1 * $1 }.squareRoot()
        }
        let centred = apply(try VisualTextAlignment.fit(head: rows, targets: targets, classes: classes, width: width, outputs: outputs, ridge: 0.1, centreLogits: true))
        let plain = apply(try VisualTextAlignment.fit(head: rows, targets: targets, classes: classes, width: width, outputs: outputs, ridge: 0.1, centreLogits: false))
        #expect(centred < 1e-3 * plain, "centred \(centred), plain \(plain)")
    }
}
