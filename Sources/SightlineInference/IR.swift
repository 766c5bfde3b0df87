import SightlineCore

/// A value flowing through a model graph: float tensors for data, int64 for shapes/indices.
public enum IRValue: Sendable, Equatable {
    case float(Tensor)
    case int64(shape: [Int], data: [Int64])

    public var shape: [Int] {
        switch self {
        case .float(let t): t.shape
        case .int64(let shape, _): shape
        }
    }

    var asInt64: [Int64] {
        switch self {
        case .float(let t): t.data.map { Int64($0) }
        case .int64(_, let d): d
        }
    }

    var asFloat: Tensor {
        switch self {
        case .float(let t): t
        case .int64(let shape, let d): Tensor(shape: shape, data: d.map(Float.init))
        }
    }

    var isInteger: Bool { if case .int64 = self { true } else { false } }
}

public enum IRAttribute: Sendable, Equatable {
    case int(Int64)
    case float(Float)
    case string(String)
    case ints([Int64])
    case floats([Float])
    case tensor(IRValue)
}

public struct IRNode: Sendable {
    public var op: String
    public var name: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: IRAttribute]

    public init(op: String, name: String, inputs: [String], outputs: [String], attributes: [String: IRAttribute]) {
        self.op = op
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    func int(_ key: String, _ fallback: Int) -> Int {
        if case .int(let v)? = attributes[key] { return Int(v) }
        return fallback
    }

    func float(_ key: String, _ fallback: Float) -> Float {
        if case .float(let v)? = attributes[key] { return v }
        return fallback
    }

    func ints(_ key: String) -> [Int]? {
        if case .ints(let v)? = attributes[key] { return v.map { Int($0) } }
        return nil
    }

    func string(_ key: String) -> String? {
        if case .string(let v)? = attributes[key] { return v }
        return nil
    }
}

/// A model as loaded from a file: nodes in topological order, constants (initializers and
/// Constant nodes), declared inputs (nil dimensions are dynamic) and outputs.
public struct IRGraph: Sendable {
    public struct Input: Sendable, Equatable {
        public var name: String
        public var dims: [Int?]

        public init(name: String, dims: [Int?]) {
            self.name = name
            self.dims = dims
        }
    }

    public init(nodes: [IRNode], constants: [String: IRValue], inputs: [Input], outputs: [String], metadata: [String: String], opset: Int) {
        self.nodes = nodes
        self.constants = constants
        self.inputs = inputs
        self.outputs = outputs
        self.metadata = metadata
        self.opset = opset
    }

    public var nodes: [IRNode]
    public var constants: [String: IRValue]
    public var inputs: [Input]
    public var outputs: [String]
    public var metadata: [String: String]
    public var opset: Int
}
