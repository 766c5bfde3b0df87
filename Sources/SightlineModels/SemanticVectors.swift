/// How a frame becomes a vector in MiniLM's text space (the space text queries are embedded
/// in). Shared by the `semantic` node and `bench retrieval`, so what is measured is what runs.
public enum SemanticVectors {
    /// How the vector is made.
    public enum Method: String, Sendable, CaseIterable {
        /// ConSE (Norouzi et al., 2014): the probability-weighted mean of the MiniLM embeddings
        /// of the frame's top ImageNet labels.
        case conse
        /// The learned ridge map from the 1280-d visual feature (`VisualTextAlignment`).
        case aligned
        /// The normalised sum of both (each unit length first, weighted by `blendWeight`).
        case blend

        /// The index space the vectors go to: each method is its own space, so vectors of
        /// different makes are never ranked against each other.
        public var space: String {
            switch self {
            case .conse: return "minilm-384-conse"
            case .aligned: return VisualTextAlignment.space
            case .blend: return "minilm-384-blend"
            }
        }
    }

    /// The share of the aligned vector in a blend.
    public static let blendWeight: Float = 0.5

    /// ConSE's mean (not normalised; zero when no label has an embedding) and the labels used.
    public static func conse(_ labels: [(name: String, probability: Float)], embedding: (String) -> [Float]?, dimension: Int = MiniLMEmbedder.dimension)
        -> (vector: [Float], used: [String]) {
        var vector = [Float](repeating: 0, count: dimension)
        var used: [String] = []
        var total: Float = 0
        for label in labels {
            guard let v = embedding(label.name), v.count == dimension else { continue }
            for d in vector.indices { vector[d] += label.probability * v[d] }
            total += label.probability
            used.append(label.name)
        }
        if total > 0 { for d in vector.indices { vector[d] /= total } }
        return (vector, used)
    }

    /// (1 − w)·â + w·b̂, where x̂ is x at unit length (a zero vector stays zero).
    public static func blend(_ a: [Float], _ b: [Float], weightOfB w: Float = blendWeight) -> [Float] {
        let ua = unit(a), ub = unit(b)
        return zip(ua, ub).map { (1 - w) * $0 + w * $1 }
    }

    public static func unit(_ v: [Float]) -> [Float] {
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 1e-12 ? v.map { $0 / norm } : v
    }
}

extension SemanticVectors {
    /// What the `semantic` node makes unless told otherwise: the best by MRR on
    /// `bench retrieval` (the note in Docs/search.md gives the numbers).
    public static let defaultMethod: Method = .blend
}
