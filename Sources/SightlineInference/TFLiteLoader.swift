import Foundation
import SightlineCore

/// Reads a TensorFlow Lite model (a FlatBuffer, schema `tflite`, identifier "TFL3") into our IR.
///
/// TFLite graphs are NHWC; the IR's convolutions, pools and resizes are NCHW, so each of those
/// is written as Transpose → op → Transpose, which the planner's `cancel-transposes` pass then
/// removes between neighbours (as it does for ONNX files exported from NHWC frameworks).
/// Weights are decoded once, here: float16 and int8/uint8 weights are dequantized (DEQUANTIZE of
/// a constant), sparse weights are densified (DENSIFY of a constant), and filters are reordered
/// to the IR's layouts. The ops supported are those of the MediaPipe detectors and segmenter:
/// CONV_2D, DEPTHWISE_CONV_2D, ADD, SUB, MUL, PAD, MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE,
/// CONCATENATION, RELU, RELU6, LOGISTIC, HARD_SWISH, RESIZE_BILINEAR, DEPTH_TO_SPACE, DEQUANTIZE
/// and DENSIFY. Anything else is refused by name; a malformed file is refused, never trusted
/// (`FlatBuffer` checks every offset, and every size is checked before it is allocated).
public enum TFLiteLoader {
    /// Caps on what a file may declare, checked before anything is allocated from them.
    static let maxTensors = 100_000
    static let maxOperators = 100_000
    static let maxRank = 6
    static let maxElements = 1 << 28

    public static func load(path: String) throws -> IRGraph {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.missing("cannot read '\(path)'")
        }
        return try load(bytes: [UInt8](data))
    }

    public static func load(bytes: [UInt8]) throws -> IRGraph {
        var reader = try Reader(FlatBuffer(bytes))
        return try reader.graph()
    }

    /// TFLite's builtin operator codes this loader knows (schema.fbs `BuiltinOperator`).
    enum Op: Int32 {
        case add = 0, averagePool2D = 1, concatenation = 2, conv2D = 3, depthwiseConv2D = 4, depthToSpace = 5, dequantize = 6
        case logistic = 14, maxPool2D = 17, mul = 18, relu = 19, relu6 = 21, reshape = 22, resizeBilinear = 23
        case pad = 34, sub = 41, hardSwish = 117, densify = 124
    }

    /// schema.fbs `TensorType`.
    enum ElementType: Int8 {
        case float32 = 0, float16 = 1, int32 = 2, uint8 = 3, int64 = 4, int8 = 9
    }

    /// A constant as stored, before it becomes an IR value.
    enum Stored {
        case float([Float])
        case half([UInt16])
        case int([Int64])
        case int8([Int8])
        case uint8([UInt8])
    }

    struct TensorInfo {
        var name: String
        var shape: [Int]
        var type: Int8
        var buffer: Int
        /// Quantization scales and zero points, and the axis they run along (per-channel).
        var scales: [Float]
        var zeroPoints: [Int64]
        var quantizedDimension: Int
        var sparsity: FlatBuffer.Table?
    }

    struct Reader {
        let file: FlatBuffer
        let model: FlatBuffer.Table
        var tensors: [TensorInfo] = []
        var buffers: [FlatBuffer.Table] = []
        var opcodes: [(code: Int32, custom: String?)] = []
        /// IR values by tensor index (a constant's or a computed value's name).
        var names: [Int: String] = [:]
        var constants: [String: IRValue] = [:]
        /// Constants not yet in IR form (float16, int8: DEQUANTIZE and DENSIFY read them).
        var stored: [Int: Stored] = [:]
        var nodes: [IRNode] = []
        var fresh = 0

        init(_ file: FlatBuffer) throws {
            self.file = file
            model = try file.root(identifier: "TFL3")
        }

        mutating func graph() throws -> IRGraph {
            let version = try model.uint32(0)
            guard version == 3 else { throw ModelError.unsupported("TFLite schema version \(version) (3 is supported)") }
            opcodes = try model.tables(1).map { code in
                let deprecated = Int32(try code.int8(0))
                let builtin = try code.int32(3)
                return (max(deprecated, builtin), try code.string(1))
            }
            let subgraphs = try model.tables(2)
            guard let main = subgraphs.first else { throw ModelError.malformed("the model has no subgraph") }
            buffers = try model.tables(4)
            let tensorTables = try main.tables(0)
            guard tensorTables.count <= TFLiteLoader.maxTensors else { throw ModelError.malformed("\(tensorTables.count) tensors") }
            var seen: [String: Int] = [:]
            for (index, table) in tensorTables.enumerated() {
                var info = try tensorInfo(table, index: index)
                // Names are for people and need not be unique; IR names must be.
                seen[info.name, default: 0] += 1
                if let count = seen[info.name], count > 1 { info.name += "#\(count)" }
                tensors.append(info)
            }
            for index in tensors.indices { try loadConstant(index) }

            let inputs = try main.int32s(1).map { try tensorIndex($0) }
            let outputs = try main.int32s(2).map { try tensorIndex($0) }
            guard !inputs.isEmpty, !outputs.isEmpty else { throw ModelError.malformed("the subgraph declares no input or no output") }
            for index in inputs { names[index] = tensors[index].name }
            let operators = try main.tables(3)
            guard operators.count <= TFLiteLoader.maxOperators else { throw ModelError.malformed("\(operators.count) operators") }
            for (position, op) in operators.enumerated() { try translate(op, position: position) }

            var outputNames: [String] = []
            for index in outputs {
                guard let name = names[index] else { throw ModelError.missing("graph output '\(tensors[index].name)' is never produced") }
                outputNames.append(name)
            }
            let graphInputs = inputs.map { IRGraph.Input(name: tensors[$0].name, dims: tensors[$0].shape.map { $0 }) }
            var metadata = ["format": "tflite"]
            if let description = try model.string(3) { metadata["description"] = description }
            return IRGraph(nodes: nodes, constants: constants, inputs: graphInputs, outputs: outputNames, metadata: metadata, opset: 13)
        }

        func tensorIndex(_ raw: Int32) throws -> Int {
            guard raw >= 0, Int(raw) < tensors.count else { throw ModelError.malformed("tensor index \(raw) of \(tensors.count)") }
            return Int(raw)
        }

        func tensorInfo(_ table: FlatBuffer.Table, index: Int) throws -> TensorInfo {
            let shape = try table.int32s(0).map(Int.init)
            guard shape.count <= TFLiteLoader.maxRank, shape.allSatisfy({ $0 >= 0 && $0 <= 1 << 24 }),
                  shape.reduce(1, { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }) <= TFLiteLoader.maxElements else {
                throw ModelError.malformed("tensor \(index) has shape \(shape)")
            }
            var scales: [Float] = [], zeroPoints: [Int64] = [], axis = 0
            if let quantization = try table.table(4) {
                scales = try quantization.floats(2)
                zeroPoints = try quantization.int64s(3)
                axis = Int(try quantization.int32(6))
            }
            return TensorInfo(name: try table.string(3) ?? "tensor\(index)", shape: shape, type: try table.int8(1),
                              buffer: Int(try table.uint32(2)), scales: scales, zeroPoints: zeroPoints, quantizedDimension: axis,
                              sparsity: try table.table(6))
        }

        /// The bytes of buffer `index` (inline, or past the FlatBuffer for very large models).
        func bufferBytes(_ index: Int) throws -> ArraySlice<UInt8> {
            guard index > 0 else { return [] }  // buffer 0 is the always-empty one
            guard index < buffers.count else { throw ModelError.malformed("buffer index \(index) of \(buffers.count)") }
            let buffer = buffers[index]
            if let data = try buffer.vector(0, elementSize: 1), data.count > 0 { return try data.bytes() }
            let offset = try buffer.uint64(1), size = try buffer.uint64(2)
            guard offset > 1 else { return [] }
            guard offset <= UInt64(file.bytes.count), size <= UInt64(file.bytes.count) - offset else {
                throw ModelError.malformed("buffer \(index) at \(offset) (+\(size)) outside the file")
            }
            return file.bytes[Int(offset)..<Int(offset + size)]
        }

        mutating func loadConstant(_ index: Int) throws {
            let info = tensors[index]
            let data = try bufferBytes(info.buffer)
            guard !data.isEmpty else { return }
            guard let type = ElementType(rawValue: info.type) else {
                throw ModelError.unsupported("constant tensor '\(info.name)' of TFLite type \(info.type)")
            }
            let count = info.shape.reduce(1, *)
            let size = [ElementType.float32: 4, .float16: 2, .int32: 4, .uint8: 1, .int64: 8, .int8: 1][type] ?? 1
            // A sparse constant stores only its non-zero values; DENSIFY makes it whole.
            guard data.count % size == 0, info.sparsity != nil ? data.count / size <= count : data.count / size == count else {
                throw ModelError.malformed("tensor '\(info.name)': \(data.count) bytes for shape \(info.shape)")
            }
            let values = Self.decode(data, type: type)
            if info.sparsity == nil, case .float(let floats) = values {
                constants[info.name] = .float(Tensor(shape: info.shape, data: floats))
                names[index] = info.name
            } else if info.sparsity == nil, case .int(let ints) = values {
                constants[info.name] = .int64(shape: info.shape, data: ints)
                names[index] = info.name
            } else {
                stored[index] = values
            }
        }

        static func decode(_ data: ArraySlice<UInt8>, type: ElementType) -> Stored {
            let base = data.startIndex
            func word(_ i: Int, _ size: Int) -> UInt64 {
                var value: UInt64 = 0
                for b in 0..<size { value |= UInt64(data[base + i * size + b]) << (8 * b) }
                return value
            }
            switch type {
            case .float32: return .float((0..<(data.count / 4)).map { Float(bitPattern: UInt32(word($0, 4))) })
            case .float16: return .half((0..<(data.count / 2)).map { UInt16(word($0, 2)) })
            case .int32: return .int((0..<(data.count / 4)).map { Int64(Int32(bitPattern: UInt32(word($0, 4)))) })
            case .int64: return .int((0..<(data.count / 8)).map { Int64(bitPattern: word($0, 8)) })
            case .int8: return .int8(data.map { Int8(bitPattern: $0) })
            case .uint8: return .uint8(Array(data))
            }
        }

        // MARK: - Operators

        mutating func translate(_ op: FlatBuffer.Table, position: Int) throws {
            let opcodeIndex = Int(try op.uint32(0))
            guard opcodeIndex < opcodes.count else { throw ModelError.malformed("operator \(position): opcode \(opcodeIndex) of \(opcodes.count)") }
            let (code, custom) = opcodes[opcodeIndex]
            let inputs = try op.int32s(1).map { $0 < 0 ? nil : try tensorIndex($0) }
            let outputs = try op.int32s(2).map { try tensorIndex($0) }
            guard let output = outputs.first, outputs.count == 1 else {
                throw ModelError.unsupported("TFLite operator \(code) at \(position) with \(outputs.count) outputs")
            }
            guard let kind = Op(rawValue: code) else {
                let name = custom.map { "custom '\($0)'" } ?? "builtin \(code)"
                throw ModelError.unsupportedOperator("TFLite \(name)", node: tensors[output].name)
            }
            let options = try op.table(4)
            func input(_ i: Int) throws -> Int {
                guard i < inputs.count, let index = inputs[i] else { throw ModelError.malformed("\(kind) '\(tensors[output].name)' lacks input \(i)") }
                return index
            }
            let out = tensors[output].name
            switch kind {
            case .dequantize:
                constants[out] = .float(try Self.tensor(tensors[output].shape, try dequantized(try input(0)), name: out))
                names[output] = out
            case .densify:
                stored[output] = try densified(try input(0))
                if case .float(let values)? = stored[output] {
                    constants[out] = .float(try Self.tensor(tensors[output].shape, values, name: out))
                    names[output] = out
                }
            case .conv2D, .depthwiseConv2D:
                try convolution(kind, input: try input(0), filter: try input(1), bias: inputs.count > 2 ? inputs[2] : nil, options: options, output: output)
            case .maxPool2D, .averagePool2D:
                try pool(kind, input: try input(0), options: options, output: output)
            case .add, .sub, .mul:
                let op = kind == .add ? "Add" : (kind == .sub ? "Sub" : "Mul")
                let result = emit(op, [try value(try input(0)), try value(try input(1))])
                finish(try activation(Int8(try options?.int8(0) ?? 0), result), as: output)
            case .relu: finish(emit("Relu", [try value(try input(0))]), as: output)
            case .relu6: finish(emit("Clip", [try value(try input(0))], ["min": .float(0), "max": .float(6)]), as: output)
            case .logistic: finish(emit("Sigmoid", [try value(try input(0))]), as: output)
            case .hardSwish: finish(emit("HardSwish", [try value(try input(0))]), as: output)
            case .pad:
                let x = try input(0)
                let paddings = try integers(try input(1))
                let rank = tensors[x].shape.count
                guard paddings.count == 2 * rank, paddings.allSatisfy({ $0 >= 0 }) else {
                    throw ModelError.malformed("PAD '\(out)': paddings \(paddings) for rank \(rank)")
                }
                // TFLite pads [[begin, end] per axis]; ONNX lists every begin, then every end.
                let pads = (0..<rank).map { paddings[2 * $0] } + (0..<rank).map { paddings[2 * $0 + 1] }
                try declared(output, equals: (0..<rank).map { tensors[x].shape[$0] + pads[$0] + pads[rank + $0] }, by: "PAD")
                finish(emit("Pad", [try value(x)], ["pads": .ints(pads.map(Int64.init)), "mode": .string("constant")]), as: output)
            case .reshape:
                let shape = tensors[output].shape
                let shapeName = constant(.int64(shape: [shape.count], data: shape.map(Int64.init)))
                finish(emit("Reshape", [try value(try input(0)), shapeName]), as: output)
            case .concatenation:
                let rank = tensors[output].shape.count
                var axis = Int(try options?.int32(0) ?? 0)
                if axis < 0 { axis += rank }
                var parts: [String] = []
                for i in inputs.indices { parts.append(try value(try input(i))) }
                let result = emit("Concat", parts, ["axis": .int(Int64(axis))])
                finish(try activation(Int8(try options?.int8(1) ?? 0), result), as: output)
            case .resizeBilinear:
                let x = try input(0)
                let alignCorners = try options?.bool(2) ?? false, halfPixel = try options?.bool(3) ?? false
                let shape = tensors[output].shape
                guard shape.count == 4 else { throw ModelError.unsupported("RESIZE_BILINEAR '\(out)' of rank \(shape.count)") }
                // The new size is the operator's second input; it must be what the output declares.
                let size = try integers(try input(1))
                let xShape = tensors[x].shape
                guard size.count == 2, xShape.count == 4 else { throw ModelError.malformed("RESIZE_BILINEAR '\(out)': size \(size)") }
                try declared(output, equals: [xShape[0], size[0], size[1], xShape[3]], by: "RESIZE_BILINEAR")
                let sizes = constant(.int64(shape: [4], data: [shape[0], shape[3], shape[1], shape[2]].map(Int64.init)))
                let transform = alignCorners ? "align_corners" : (halfPixel ? "half_pixel" : "asymmetric")
                let resized = emit("Resize", [toNCHW(try value(x)), "", "", sizes],
                                   ["mode": .string("linear"), "coordinate_transformation_mode": .string(transform)])
                finish(toNHWC(resized), as: output)
            case .depthToSpace:
                let block = Int(try options?.int32(0) ?? 0)
                guard (1...64).contains(block) else { throw ModelError.malformed("DEPTH_TO_SPACE '\(out)' block size \(block)") }
                let xShape = tensors[try input(0)].shape
                guard xShape.count == 4, xShape[3] % (block * block) == 0 else {
                    throw ModelError.malformed("DEPTH_TO_SPACE '\(out)': block \(block) for shape \(xShape)")
                }
                try declared(output, equals: [xShape[0], xShape[1] * block, xShape[2] * block, xShape[3] / (block * block)], by: "DEPTH_TO_SPACE")
                // TFLite's channel order is ONNX's DCR mode.
                let moved = emit("DepthToSpace", [toNCHW(try value(try input(0)))], ["blocksize": .int(Int64(block)), "mode": .string("DCR")])
                finish(toNHWC(moved), as: output)
            }
        }

        /// CONV_2D (filter OHWI) and DEPTHWISE_CONV_2D (filter 1HW(C·m)) as an NCHW Conv.
        mutating func convolution(_ kind: Op, input x: Int, filter: Int, bias: Int?, options: FlatBuffer.Table?, output: Int) throws {
            let out = tensors[output].name
            let xShape = tensors[x].shape, wShape = tensors[filter].shape
            guard xShape.count == 4, wShape.count == 4, let w = try floatConstant(filter) else {
                throw ModelError.unsupported("\(kind) '\(out)' needs a 4-D input and constant 4-D weights")
            }
            guard let options else { throw ModelError.malformed("\(kind) '\(out)' has no options") }
            let depthwise = kind == .depthwiseConv2D
            let padding = try options.int8(0)
            let strideW = Int(try options.int32(1)), strideH = Int(try options.int32(2))
            let activationCode = try options.int8(depthwise ? 4 : 3)
            let dilationW = Int(try options.int32(depthwise ? 5 : 4, default: 1)), dilationH = Int(try options.int32(depthwise ? 6 : 5, default: 1))
            guard (1...64).contains(strideW), (1...64).contains(strideH), (1...64).contains(dilationW), (1...64).contains(dilationH) else {
                throw ModelError.malformed("\(kind) '\(out)': strides \(strideH)×\(strideW), dilations \(dilationH)×\(dilationW)")
            }
            let (kh, kw) = (wShape[1], wShape[2])
            let channels = xShape[3]
            var weight: Tensor
            var group = 1
            if depthwise {
                // [1, kh, kw, C·m] → [C·m, 1, kh, kw], one group per input channel.
                let outChannels = wShape[3]
                guard wShape[0] == 1, channels > 0, outChannels % channels == 0 else {
                    throw ModelError.shapeMismatch("DEPTHWISE_CONV_2D '\(out)': weights \(wShape) for \(channels) channels")
                }
                weight = Tensor(shape: [outChannels, 1, kh, kw], data: (0..<(outChannels * kh * kw)).map { i in
                    let o = i / (kh * kw), tap = i % (kh * kw)
                    return w.data[tap * outChannels + o]
                })
                group = channels
            } else {
                // OHWI → OIHW.
                let (o, inC) = (wShape[0], wShape[3])
                guard inC == channels else { throw ModelError.shapeMismatch("CONV_2D '\(out)': weights \(wShape) for \(channels) channels") }
                weight = Tensor(shape: [o, inC, kh, kw], data: (0..<(o * inC * kh * kw)).map { i in
                    let (f, rest) = (i / (inC * kh * kw), i % (inC * kh * kw))
                    let (c, tap) = (rest / (kh * kw), rest % (kh * kw))
                    return w.data[(f * kh * kw + tap) * inC + c]
                })
            }
            let pads = try Self.pads(padding: padding, input: (xShape[1], xShape[2]), kernel: (kh, kw), stride: (strideH, strideW),
                                     dilation: (dilationH, dilationW), name: out)
            let outChannels = depthwise ? wShape[3] : wShape[0]
            try declared(output, equals: [xShape[0], Self.convolved(xShape[1], kh, strideH, dilationH, pads[0] + pads[2]),
                                          Self.convolved(xShape[2], kw, strideW, dilationW, pads[1] + pads[3]), outChannels], by: "\(kind)")
            var conv = [toNCHW(try value(x)), constant(.float(weight))]
            if let bias, let b = try floatConstant(bias) { conv.append(constant(.float(Tensor(shape: [b.count], data: b.data)))) }
            let result = emit("Conv", conv, [
                "strides": .ints([Int64(strideH), Int64(strideW)]), "dilations": .ints([Int64(dilationH), Int64(dilationW)]),
                "pads": .ints(pads.map(Int64.init)), "group": .int(Int64(group)), "kernel_shape": .ints([Int64(kh), Int64(kw)]),
            ])
            finish(toNHWC(try activation(activationCode, result)), as: output)
        }

        mutating func pool(_ kind: Op, input x: Int, options: FlatBuffer.Table?, output: Int) throws {
            let out = tensors[output].name
            let xShape = tensors[x].shape
            guard xShape.count == 4, let options else { throw ModelError.malformed("\(kind) '\(out)' needs a 4-D input and options") }
            let strideW = Int(try options.int32(1)), strideH = Int(try options.int32(2))
            let kw = Int(try options.int32(3)), kh = Int(try options.int32(4))
            guard [strideW, strideH, kw, kh].allSatisfy({ (1...256).contains($0) }) else {
                throw ModelError.malformed("\(kind) '\(out)': window \(kh)×\(kw), strides \(strideH)×\(strideW)")
            }
            let pads = try Self.pads(padding: try options.int8(0), input: (xShape[1], xShape[2]), kernel: (kh, kw),
                                     stride: (strideH, strideW), dilation: (1, 1), name: out)
            try declared(output, equals: [xShape[0], Self.convolved(xShape[1], kh, strideH, 1, pads[0] + pads[2]),
                                          Self.convolved(xShape[2], kw, strideW, 1, pads[1] + pads[3]), xShape[3]], by: "\(kind)")
            let result = emit(kind == .maxPool2D ? "MaxPool" : "AveragePool", [toNCHW(try value(x))], [
                "kernel_shape": .ints([Int64(kh), Int64(kw)]), "strides": .ints([Int64(strideH), Int64(strideW)]),
                "pads": .ints(pads.map(Int64.init)),
            ])
            finish(toNHWC(try activation(try options.int8(5), result)), as: output)
        }

        /// The output size of a window sliding over `size` (with `padding` in all).
        static func convolved(_ size: Int, _ kernel: Int, _ stride: Int, _ dilation: Int, _ padding: Int) -> Int {
            let span = (kernel - 1) * dilation + 1
            return size + padding < span ? 0 : (size + padding - span) / stride + 1
        }

        /// The file declares every tensor's shape; an operator whose result would disagree with
        /// it is refused (a damaged file would otherwise make, say, a pad of millions of pixels).
        func declared(_ output: Int, equals computed: [Int], by op: String) throws {
            let shape = tensors[output].shape
            guard shape == computed, computed.allSatisfy({ $0 > 0 }) else {
                throw ModelError.malformed("\(op) '\(tensors[output].name)' is declared \(shape) but computes \(computed)")
            }
        }

        /// ONNX pads [top, left, bottom, right] for TFLite SAME (extra at the end) or VALID padding.
        static func pads(padding: Int8, input: (Int, Int), kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int), name: String) throws -> [Int] {
            switch padding {
            case 1: return [0, 0, 0, 0]  // VALID
            case 0:  // SAME: out = ceil(in / stride)
                func same(_ size: Int, _ k: Int, _ s: Int, _ d: Int) -> (Int, Int) {
                    let out = (size + s - 1) / s
                    let total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
                    return (total / 2, total - total / 2)
                }
                let (top, bottom) = same(input.0, kernel.0, stride.0, dilation.0)
                let (left, right) = same(input.1, kernel.1, stride.1, dilation.1)
                return [top, left, bottom, right]
            default: throw ModelError.malformed("'\(name)': padding type \(padding)")
            }
        }

        /// A fused activation (schema `ActivationFunctionType`) after `value`.
        mutating func activation(_ code: Int8, _ value: String) throws -> String {
            switch code {
            case 0: return value
            case 1: return emit("Relu", [value])
            case 2: return emit("Clip", [value], ["min": .float(-1), "max": .float(1)])
            case 3: return emit("Clip", [value], ["min": .float(0), "max": .float(6)])
            case 4: return emit("Tanh", [value])
            default: throw ModelError.unsupported("fused activation \(code) after '\(value)'")
            }
        }

        // MARK: - Constants

        /// A float constant's values (float32, or float16/int8 turned to float).
        func floatConstant(_ index: Int) throws -> Tensor? {
            if case .float(let t)? = constants[tensors[index].name] { return t }
            if stored[index] != nil { return try Self.tensor(tensors[index].shape, try dequantized(index), name: tensors[index].name) }
            return nil
        }

        /// A tensor of `shape` from `values`, refused when the counts disagree (a damaged file).
        static func tensor(_ shape: [Int], _ values: [Float], name: String) throws -> Tensor {
            guard shape.reduce(1, *) == values.count else {
                throw ModelError.malformed("'\(name)' holds \(values.count) values for shape \(shape)")
            }
            return Tensor(shape: shape, data: values)
        }

        func integers(_ index: Int) throws -> [Int] {
            if case .int64(_, let data)? = constants[tensors[index].name] { return data.map { Int(truncatingIfNeeded: $0) } }
            if case .int(let data)? = stored[index] { return data.map { Int(truncatingIfNeeded: $0) } }
            throw ModelError.unsupported("'\(tensors[index].name)' must be a constant integer tensor")
        }

        /// DEQUANTIZE of a constant: float16 widened, int8/uint8 through scale and zero point
        /// (one per tensor, or one per slice along `quantized_dimension`).
        func dequantized(_ index: Int) throws -> [Float] {
            let info = tensors[index]
            switch stored[index] {
            case .half(let bits)?: return bits.map { Float(Float16(bitPattern: $0)) }
            case .float(let values)?: return values
            case .int8(let q)?: return try affine(q.map(Int64.init), info)
            case .uint8(let q)?: return try affine(q.map(Int64.init), info)
            default:
                if case .float(let t)? = constants[info.name] { return t.data }
                throw ModelError.unsupported("DEQUANTIZE of '\(info.name)', which is not a constant")
            }
        }

        func affine(_ q: [Int64], _ info: TensorInfo) throws -> [Float] {
            guard !info.scales.isEmpty else { throw ModelError.malformed("'\(info.name)' is quantized without a scale") }
            if info.scales.count == 1 {
                let zero = info.zeroPoints.first ?? 0
                return q.map { Float($0 - zero) * info.scales[0] }
            }
            let axis = info.quantizedDimension
            guard axis >= 0, axis < info.shape.count, info.shape[axis] == info.scales.count else {
                throw ModelError.malformed("'\(info.name)': \(info.scales.count) scales along axis \(axis) of \(info.shape)")
            }
            let inner = info.shape.dropFirst(axis + 1).reduce(1, *)
            return q.indices.map { i in
                let channel = (i / inner) % info.scales.count
                return Float(q[i] - (channel < info.zeroPoints.count ? info.zeroPoints[channel] : 0)) * info.scales[channel]
            }
        }

        /// DENSIFY of a sparse constant: the values in `stored`, placed by the tensor's sparsity
        /// (schema `SparsityParameters`: a traversal order over the dimensions and any block
        /// dimensions, each level dense or compressed as CSR segments and indices).
        func densified(_ index: Int) throws -> Stored {
            let info = tensors[index]
            guard let sparsity = info.sparsity, let values = stored[index] else {
                throw ModelError.unsupported("DENSIFY of '\(info.name)', which is not a sparse constant")
            }
            let shape = info.shape
            let rank = shape.count
            let order = try sparsity.int32s(0).map(Int.init)
            let blockMap = try sparsity.int32s(1).map(Int.init)
            let levels = try sparsity.tables(2)
            let depth = rank + blockMap.count
            guard levels.count == depth, order.count == depth, Set(order) == Set(0..<depth),
                  blockMap.allSatisfy({ (0..<rank).contains($0) }) else {
                throw ModelError.malformed("'\(info.name)': sparsity of \(levels.count) levels for rank \(rank)")
            }
            struct Level {
                var dense: Bool
                var size: Int
                var segments: [Int]
                var indices: [Int]
            }
            func indexVector(_ table: FlatBuffer.Table, type: UInt8, id: Int) throws -> [Int] {
                guard let vector = try table.table(id) else { return [] }
                switch type {
                case 1: return try vector.int32s(0).map(Int.init)
                case 2:
                    guard let v = try vector.vector(0, elementSize: 2) else { return [] }
                    return try (0..<v.count).map { Int(try file.uint16(at: v.start + 2 * $0)) }
                case 3:
                    guard let v = try vector.vector(0, elementSize: 1) else { return [] }
                    return try v.bytes().map(Int.init)
                default: throw ModelError.malformed("'\(info.name)': sparse index vector type \(type)")
                }
            }
            let parsed = try levels.map { level -> Level in
                let format = try level.int8(0)
                if format == 0 { return Level(dense: true, size: Int(try level.int32(1)), segments: [], indices: []) }
                return Level(dense: false, size: 0, segments: try indexVector(level, type: try level.uint8(2), id: 3),
                             indices: try indexVector(level, type: try level.uint8(4), id: 5))
            }
            // Block sizes: the extent of each block level (always dense in practice).
            let blockSizes = (0..<blockMap.count).map { parsed[rank + $0].size }
            guard blockSizes.allSatisfy({ $0 >= 1 }) else { throw ModelError.malformed("'\(info.name)': empty sparse block") }
            let count = shape.reduce(1, *)
            let strides = Tensor.strides(for: shape)
            var placements: [Int] = []  // dense position of each stored value, in storage order
            placements.reserveCapacity(count)
            var indices = [Int](repeating: 0, count: depth)
            func walk(_ level: Int, _ previous: Int) throws {
                if level == depth {
                    var position = [Int](repeating: 0, count: rank)
                    for i in 0..<rank { position[order[i]] = indices[i] }
                    for i in rank..<depth {
                        let block = order[i] - rank
                        guard block >= 0, block < blockMap.count else { throw ModelError.malformed("'\(info.name)': traversal order") }
                        position[blockMap[block]] = position[blockMap[block]] * blockSizes[block] + indices[i]
                    }
                    guard zip(position, shape).allSatisfy({ $0 >= 0 && $0 < $1 }) else {
                        throw ModelError.malformed("'\(info.name)': a sparse value outside shape \(shape)")
                    }
                    placements.append(zip(position, strides).reduce(0) { $0 + $1.0 * $1.1 })
                    guard placements.count <= count else { throw ModelError.malformed("'\(info.name)': more sparse values than cells") }
                    return
                }
                let l = parsed[level]
                if l.dense {
                    guard l.size >= 0, l.size <= count else { throw ModelError.malformed("'\(info.name)': dense level of \(l.size)") }
                    for i in 0..<l.size {
                        indices[level] = i
                        try walk(level + 1, previous * l.size + i)
                    }
                } else {
                    guard previous + 1 < l.segments.count, l.segments[previous] <= l.segments[previous + 1],
                          l.segments[previous + 1] <= l.indices.count else {
                        throw ModelError.malformed("'\(info.name)': CSR segments out of range")
                    }
                    for i in l.segments[previous]..<l.segments[previous + 1] {
                        indices[level] = l.indices[i]
                        try walk(level + 1, i)
                    }
                }
            }
            try walk(0, 0)
            func place<T>(_ stored: [T], zero: T) throws -> [T] {
                guard stored.count == placements.count else {
                    throw ModelError.malformed("'\(info.name)': \(stored.count) values for \(placements.count) sparse cells")
                }
                var dense = [T](repeating: zero, count: count)
                for (value, position) in zip(stored, placements) { dense[position] = value }
                return dense
            }
            switch values {
            case .float(let v): return .float(try place(v, zero: 0))
            case .half(let v): return .half(try place(v, zero: 0))
            case .int(let v): return .int(try place(v, zero: 0))
            case .int8(let v): return .int8(try place(v, zero: 0))
            case .uint8(let v): return .uint8(try place(v, zero: 0))
            }
        }

        // MARK: - Emitting IR

        /// The IR value of tensor `index` (an input, a constant, or an earlier output).
        mutating func value(_ index: Int) throws -> String {
            if let name = names[index] { return name }
            if stored[index] != nil, let t = try floatConstant(index) {
                constants[tensors[index].name] = .float(t)
                names[index] = tensors[index].name
                return tensors[index].name
            }
            throw ModelError.missing("tensor '\(tensors[index].name)' is used before it is produced")
        }

        mutating func constant(_ value: IRValue) -> String {
            fresh += 1
            let name = "tflite#const\(fresh)"
            constants[name] = value
            return name
        }

        mutating func emit(_ op: String, _ inputs: [String], _ attributes: [String: IRAttribute] = [:]) -> String {
            fresh += 1
            let name = "tflite#\(op)\(fresh)"
            nodes.append(IRNode(op: op, name: name, inputs: inputs, outputs: [name], attributes: attributes))
            return name
        }

        mutating func toNCHW(_ value: String) -> String { emit("Transpose", [value], ["perm": .ints([0, 3, 1, 2])]) }

        mutating func toNHWC(_ value: String) -> String { emit("Transpose", [value], ["perm": .ints([0, 2, 3, 1])]) }

        /// The last node written makes tensor `output`: it takes the tensor's name.
        mutating func finish(_ value: String, as output: Int) {
            let name = tensors[output].name
            if let last = nodes.indices.last, nodes[last].outputs == [value] {
                nodes[last].outputs = [name]
            } else {
                nodes.append(IRNode(op: "Identity", name: name, inputs: [value], outputs: [name], attributes: [:]))
            }
            names[output] = name
        }
    }
}
