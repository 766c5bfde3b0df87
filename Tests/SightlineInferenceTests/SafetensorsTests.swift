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

    /// A table read row by row from a file on disk, and the loader skipping it.
    @Test func rowReaderReadsTheRowsOfAFileOnDisk() throws {
        let header = """
        {"table":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]},"h":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},
         "flat":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}
        """
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rows-\(UUID().uuidString).safetensors")
        let bytes = Self.file(header, Self.floats([1, 2, 3, 4, 5, 6]) + [0x00, 0x3c, 0x00, 0xc0])
        try bytes.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }

        let table = try SafetensorsRowReader(path: url.path, tensor: "table")
        #expect(table.rows == 3 && table.columns == 2)
        var out: [Float] = [10, 20]
        try out.withUnsafeMutableBufferPointer { p in
            try table.add(row: 2, to: p.baseAddress!)
            try table.add(row: 0, to: p.baseAddress!)
        }
        #expect(out == [16, 28])
        #expect(throws: ModelError.self) { try out.withUnsafeMutableBufferPointer { try table.add(row: 3, to: $0.baseAddress!) } }
        #expect(throws: ModelError.self) { try out.withUnsafeMutableBufferPointer { try table.add(row: -1, to: $0.baseAddress!) } }

        #expect(throws: ModelError.self) { try SafetensorsRowReader(path: url.path, tensor: "h") }  // F16
        #expect(throws: ModelError.self) { try SafetensorsRowReader(path: url.path, tensor: "flat") }  // rank 1
        #expect(throws: ModelError.self) { try SafetensorsRowReader(path: url.path, tensor: "missing") }
        #expect(throws: ModelError.self) { try SafetensorsRowReader(path: url.path + ".absent", tensor: "table") }

        let rest = try SafetensorsLoader.load(path: url.path, skipping: ["table"])
        #expect(Set(rest.keys) == ["h", "flat"])
        #expect(rest["h"]?.data == [1, -2])
        #expect(throws: ModelError.self) { try SafetensorsLoader.mapped(path: url.path + ".absent") }

        // Cut short after opening: the read fails instead of returning stale or zero values.
        let truncated = try FileHandle(forWritingTo: url)
        try truncated.truncate(atOffset: UInt64(bytes.count - 20))
        try truncated.close()
        #expect(throws: ModelError.self) { try out.withUnsafeMutableBufferPointer { try table.add(row: 2, to: $0.baseAddress!) } }
        // A header that claims more than the file holds is refused at open.
        #expect(throws: ModelError.self) { try SafetensorsRowReader(path: url.path, tensor: "table") }
    }

    /// Offsets are measured from the data's start index, so a slice of a larger buffer reads the same.
    @Test func aSliceReadsLikeTheWholeFile() throws {
        let whole = Data([9, 9, 9]) + Self.file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}}", Self.floats([7, -1]))
        #expect(try SafetensorsLoader.load(data: whole[3...])["w"]?.data == [7, -1])
    }
}
