import Crypto
import Foundation
import SightlineCore
import SightlineInference
import SightlineKernels

/// A learned linear map from EfficientNet-Lite0's pooled 1280-d feature into MiniLM's 384-d
/// text space, so a text query can be compared with any frame directly — every frame, through
/// its whole feature, not only through its top labels as ConSE does.
///
/// The training pairs are the classifier's own head: class c's weight row h_c (1280-d) with the
/// MiniLM embedding t_c of "name: WordNet gloss". Ridge regression, M = argmin Σ‖M h_c − t_c‖²
/// + λ‖M‖², solved in its dual form because there are fewer classes (1000) than features:
///     M = Tᵀ (H Hᵀ + λI)⁻¹ H,
/// so M v = Tᵀ (H Hᵀ + λI)⁻¹ (H v): the frame's bias-free logits, decorrelated, then a
/// weighted sum of the class texts. The fit takes seconds (one 1000×1280 GEMM, a 1000×1000
/// Cholesky, 1000 MiniLM sentences) and is cached beside the models under a digest of every
/// input (both models' sha256, the glosses, the label names, λ), so a changed input refits.
public struct VisualTextAlignment: Sendable {
    public static let inputDimension = 1280
    public static let outputDimension = MiniLMEmbedder.dimension
    /// The space of projected vectors (queries are MiniLM embeddings of the user's words).
    public static let space = "minilm-384-aligned"
    /// Ridge strength as a fraction of the mean diagonal of H Hᵀ. Chosen on held-out classes
    /// (`sightline bench retrieval --lambdas` prints the sweep), never on the retrieval set.
    public static let defaultRidge: Double = 1
    /// Bump when the fit's recipe changes, so cached fits are not reused.
    static let recipeVersion = 2
    /// Centre the logits before mapping (see `fit`); `bench retrieval` measures both.
    public static let defaultCentring = true
    /// Fit to class texts minus their mean (see `fit`); `bench retrieval` measures both.
    public static let defaultTargetCentring = false

    /// 384 × 1280, row-major.
    public let matrix: [Float]
    /// sha256 of the fit's inputs: the cache key, and provenance for the vectors it makes.
    public let digest: String

    public init(matrix: [Float], digest: String) throws {
        guard matrix.count == Self.inputDimension * Self.outputDimension else {
            throw ModelError.shapeMismatch("an alignment matrix needs \(Self.inputDimension * Self.outputDimension) values, got \(matrix.count)")
        }
        self.matrix = matrix
        self.digest = digest
    }

    /// The unit-length text-space vector of a visual feature (any scale; it is normalised).
    public func project(_ visual: [Float]) -> [Float] {
        precondition(visual.count == Self.inputDimension, "a \(visual.count)-d feature, not \(Self.inputDimension)-d")
        var out = [Float](repeating: 0, count: Self.outputDimension)
        matrix.withUnsafeBufferPointer { m in
            visual.withUnsafeBufferPointer { v in
                out.withUnsafeMutableBufferPointer { o in
                    guard let mb = m.baseAddress, let vb = v.baseAddress, let ob = o.baseAddress else { return }
                    gemm(transposeA: false, transposeB: false, m: Self.outputDimension, n: 1, k: Self.inputDimension,
                         a: mb, lda: Self.inputDimension, b: vb, ldb: 1, c: ob, ldc: 1)
                }
            }
        }
        let norm = max(out.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        return out.map { $0 / norm }
    }

    // MARK: - The training pairs

    /// "name: gloss" per class, in class order.
    public static func classTexts() throws -> [String] {
        guard let url = Bundle.module.url(forResource: "imagenet-glosses", withExtension: "tsv"),
              let text = try? String(contentsOf: url, encoding: .utf8) else { throw ModelError.missing("the imagenet-glosses.tsv resource") }
        let glosses = text.split(separator: "\n").map { line in line.split(separator: "\t", maxSplits: 1).last.map(String.init) ?? "" }
        let names = ImageNetLabels.names
        guard glosses.count == 1000, names.count == 1000 else {
            throw ModelError.shapeMismatch("expected 1000 class glosses and names, got \(glosses.count) and \(names.count)")
        }
        return zip(names, glosses).map { "\($0): \($1)" }
    }

    /// The classifier's weight rows (1000 × 1280, row-major) from the verified state_dict.
    public static func headRows(store: ModelStore) throws -> [Float] {
        let weights = try TorchLegacyLoader.load(path: try store.verify(ModelZoo.efficientNetLite0))
        guard let head = weights["_fc.weight"], head.shape == [1000, inputDimension] else {
            throw ModelError.missing("EfficientNet-Lite0's state_dict has no 1000×\(inputDimension) '_fc.weight'")
        }
        return head.data
    }

    // MARK: - Fitting

    /// Loads the cached fit for these inputs, or fits and caches it.
    public static func load(store: ModelStore = ModelStore(), ridge: Double = defaultRidge, embedder: MiniLMEmbedder? = nil) throws -> VisualTextAlignment {
        let texts = try classTexts()
        let digest = inputsDigest(texts: texts, ridge: ridge)
        let cached = store.directory + "/alignment-\(digest.prefix(16)).f32"
        let expectedBytes = inputDimension * outputDimension * MemoryLayout<Float>.size
        if let data = FileManager.default.contents(atPath: cached), data.count == expectedBytes {
            let matrix = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            if matrix.allSatisfy(\.isFinite) { return try VisualTextAlignment(matrix: matrix, digest: digest) }
        }
        let text = try embedder ?? MiniLMEmbedder(store: store)
        let targets = try text.embed(texts).flatMap { $0 }
        let matrix = try fit(head: try headRows(store: store), targets: targets, classes: texts.count, ridge: ridge)
        // Written to a temporary name and renamed: a reader never sees half a matrix.
        let partial = cached + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        if (try? matrix.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: partial))) != nil {
            _ = try? FileManager.default.removeItem(atPath: cached)
            try? FileManager.default.moveItem(atPath: partial, toPath: cached)
        }
        return try VisualTextAlignment(matrix: matrix, digest: digest)
    }

    static func inputsDigest(texts: [String], ridge: Double) -> String {
        var hasher = SHA256()
        for part in ["recipe \(recipeVersion)", ModelZoo.efficientNetLite0.sha256, ModelZoo.miniLM.sha256, "ridge \(ridge)", "centred \(defaultCentring)", "targets centred \(defaultTargetCentring)"] + texts {
            hasher.update(data: Data(part.utf8))
            hasher.update(data: Data([0]))
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Ridge fit in the dual: M (outputs × width) = Tᵀ (H Hᵀ + λI)⁻¹ H, with λ = ridge · mean
    /// diagonal of H Hᵀ. `head` is classes × width, `targets` classes × outputs (row-major).
    public static func fit(head: [Float], targets: [Float], classes: Int, width: Int = inputDimension,
                           outputs: Int = outputDimension, ridge: Double, centreLogits: Bool = defaultCentring,
                           centreTargets: Bool = defaultTargetCentring) throws -> [Float] {
        guard classes > 0, head.count == classes * width, targets.count == classes * outputs else {
            throw ModelError.shapeMismatch("alignment fit: \(head.count) head values and \(targets.count) targets for \(classes) classes")
        }
        guard ridge > 0 else { throw ModelError.shapeMismatch("alignment fit: the ridge must be positive") }
        // Gram matrix H Hᵀ (classes × classes).
        var gram = [Float](repeating: 0, count: classes * classes)
        head.withUnsafeBufferPointer { h in
            gram.withUnsafeMutableBufferPointer { g in
                guard let hb = h.baseAddress, let gb = g.baseAddress else { return }
                gemm(transposeA: false, transposeB: true, m: classes, n: classes, k: width, a: hb, lda: width, b: hb, ldb: width, c: gb, ldc: classes)
            }
        }
        var system = gram.map(Double.init)
        let meanDiagonal = (0..<classes).reduce(0.0) { $0 + system[$1 * classes + $1] } / Double(classes)
        let lambda = ridge * max(meanDiagonal, 1e-12)
        for i in 0..<classes { system[i * classes + i] += lambda }
        // A = (H Hᵀ + λI)⁻¹ T  (classes × outputs).
        var solution = targets.map(Double.init)
        if centreTargets {
            // Class texts share a large common direction ("a kind of …" sentences); fitted,
            // it becomes a hub every frame is near. Fit to the differences instead.
            for o in 0..<outputs {
                let mean = (0..<classes).reduce(0.0) { $0 + solution[$1 * outputs + o] } / Double(classes)
                for c in 0..<classes { solution[c * outputs + o] -= mean }
            }
        }
        try CholeskySolver.solve(&system, size: classes, rightHandSides: &solution, count: outputs)
        let a = solution.map(Float.init)
        // M = Aᵀ H  (outputs × width).
        var matrix = [Float](repeating: 0, count: outputs * width)
        a.withUnsafeBufferPointer { ab in
            head.withUnsafeBufferPointer { h in
                matrix.withUnsafeMutableBufferPointer { m in
                    guard let aBase = ab.baseAddress, let hb = h.baseAddress, let mb = m.baseAddress else { return }
                    gemm(transposeA: true, transposeB: false, m: outputs, n: width, k: classes, a: aBase, lda: outputs, b: hb, ldb: width, c: mb, ldc: width)
                }
            }
        }
        if centreLogits {
            // M (I − 11ᵀ/n)-style: Aᵀ (z − mean z) for logits z = H v. A shift common to every
            // logit says nothing (softmax ignores it) but the post-ReLU feature has a large
            // one, and uncentred it pulls every frame towards the same few class texts.
            var columnSums = [Double](repeating: 0, count: outputs), rowSums = [Double](repeating: 0, count: width)
            for c in 0..<classes {
                for o in 0..<outputs { columnSums[o] += Double(a[c * outputs + o]) }
                for w in 0..<width { rowSums[w] += Double(head[c * width + w]) }
            }
            for o in 0..<outputs {
                for w in 0..<width { matrix[o * width + w] -= Float(columnSums[o] * rowSums[w] / Double(classes)) }
            }
        }
        return matrix
    }
}

/// Solves S X = B for a symmetric positive-definite S by Cholesky factorisation, in Double.
/// Written here because our BLAS shim exposes no LAPACK, and one 1000×1000 factorisation per
/// fit (about 0.3 GFLOP) does not justify a new system dependency.
public enum CholeskySolver {
    public struct NotPositiveDefinite: Error, CustomStringConvertible {
        public var pivot: Int
        public var description: String { "the matrix is not positive definite (pivot \(pivot))" }
    }

    /// `matrix` (size × size, row-major) is overwritten by its factor L; `rightHandSides`
    /// (size × count, row-major) by the solution.
    public static func solve(_ matrix: inout [Double], size n: Int, rightHandSides b: inout [Double], count m: Int) throws {
        precondition(matrix.count == n * n && b.count == n * m, "Cholesky: shapes do not match")
        try matrix.withUnsafeMutableBufferPointer { s in
            // Factor: S = L Lᵀ, L in the lower triangle (row-major, so row i's prefix is contiguous).
            for j in 0..<n {
                var diagonal = s[j * n + j]
                for k in 0..<j { diagonal -= s[j * n + k] * s[j * n + k] }
                guard diagonal > 0, diagonal.isFinite else { throw NotPositiveDefinite(pivot: j) }
                let pivot = diagonal.squareRoot()
                s[j * n + j] = pivot
                for i in (j + 1)..<max(j + 1, n) {
                    var sum = s[i * n + j]
                    for k in 0..<j { sum -= s[i * n + k] * s[j * n + k] }
                    s[i * n + j] = sum / pivot
                }
            }
            b.withUnsafeMutableBufferPointer { x in
                // Forward: L Y = B.
                for i in 0..<n {
                    for k in 0..<i {
                        let l = s[i * n + k]
                        if l == 0 { continue }
                        for c in 0..<m { x[i * m + c] -= l * x[k * m + c] }
                    }
                    let d = s[i * n + i]
                    for c in 0..<m { x[i * m + c] /= d }
                }
                // Back: Lᵀ X = Y.
                for i in stride(from: n - 1, through: 0, by: -1) {
                    for k in (i + 1)..<max(i + 1, n) {
                        let l = s[k * n + i]
                        if l == 0 { continue }
                        for c in 0..<m { x[i * m + c] -= l * x[k * m + c] }
                    }
                    let d = s[i * n + i]
                    for c in 0..<m { x[i * m + c] /= d }
                }
            }
        }
    }
}
