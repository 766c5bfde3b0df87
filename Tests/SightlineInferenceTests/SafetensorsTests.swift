import Foundation
import Testing
import SightlineCore
@testable import SightlineInference

@Suite struct SafetensorsTests {
    static func file(_ header: String, _ payload: [UInt8]) -> Data {
        let h = Array(header.utf8)
        var data = Data()
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { data.append(contentsOf: $0) }
        return data + h + payload
    }

    static func floats(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }

    @Test func readsFloatHalfAndIntegerTensors() throws {
        let f32 = Self.floats([1, -2, 3.5, 0.25, 8, 9])
        let f16: [UInt8] = [0x00, 0x3c, 0x00, 0xc0]  // 1.0, -2.0
        let bf16: [UInt8] = [0x80, 0x3f]  // 1.0
        let i64: [UInt8] = [7, 0, 0, 0, 0, 0, 0, 0]
        let header = """
        {"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},
         "h":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[28,30]},
         "ids":{"dtype":"I64","shape":[1],"data_offsets":[30,38]}}
        """
        let tensors = try SafetensorsLoader.load(data: Self.file(header, f32 + f16 + bf16 + i64))
        #expect(tensors["w"] == Tensor(shape: [2, 3], data: [1, -2, 3.5, 0.25, 8, 9]))
        #expect(tensors["h"]?.data == [1, -2])
        #expect(tensors["b"]?.data == [1])
        #expect(tensors["ids"]?.data == [7])
        #expect(tensors.count == 4)
    }

    @Test(arguments: [
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,28]}}",  // past the end
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,24]}}",  // size mismatch
        "{\"w\":{\"dtype\":\"Q4\",\"shape\":[6],\"data_offsets\":[0,24]}}",  // unknown dtype
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[-6],\"data_offsets\":[0,24]}}",  // negative
        "{\"w\":{\"dtype\":\"F32\"}}",  // missing fields
        "[1,2,3]", "not json",
    ])
    func malformedHeadersAreRefused(header: String) {
        #expect(throws: ModelError.self) { try SafetensorsLoader.load(data: Self.file(header, Self.floats([1, 2, 3, 4, 5, 6]))) }
    }

    @Test func lyingHeaderLengthIsRefused() {
        var data = Self.file("{}", [])
        data[0] = 0xff
        data[7] = 0x7f
        #expect(throws: ModelError.self) { try SafetensorsLoader.load(data: data) }
        #expect(throws: ModelError.self) { try SafetensorsLoader.load(data: Data([1, 2, 3])) }
    }
}
