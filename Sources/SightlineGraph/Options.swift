import Foundation
import SightlineCore

/// The type of a node option, as in libavfilter's AVOption tables.
public enum OptionType: Sendable, Equatable, CustomStringConvertible {
    case int
    case double
    case string
    case bool
    /// One of a fixed set of names.
    case choice([String])
    /// A rate such as `2`, `0.5` or `30000/1001`.
    case rational
    /// `WxH`, `Wx` or `xH`.
    case size
    /// A file the pipeline reads (a policy, a template): relative to the pipeline file's folder
    /// when written there, to the working directory when given with --set; `validate` opens it.
    case inputFile
    /// A folder the pipeline reads (allowed client keys), resolved like `inputFile`.
    case inputFolder
    /// A file or folder the pipeline writes: relative to the output folder (`--output DIR`, the
    /// pipeline's `output:`, or else the working directory).
    case outputPath
    /// Media to decode: a URL (`rtsp://…`) as it is, or a local path resolved like `inputFile`
    /// (not opened by `validate`: a camera may be down, a placeholder replaced by --input).
    case media

    public var description: String {
        switch self {
        case .inputFile: "file"
        case .inputFolder: "folder"
        case .outputPath: "output path"
        case .media: "url or path"
        case .int: "int"
        case .double: "float"
        case .string: "string"
        case .bool: "bool"
        case .choice(let names): names.joined(separator: "|")
        case .rational: "rational"
        case .size: "size"
        }
    }
}

public enum OptionValue: Sendable, Equatable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)

    public var description: String {
        switch self {
        case .int(let v): String(v)
        case .double(let v): String(v)
        case .string(let v): v
        case .bool(let v): v ? "true" : "false"
        }
    }
}

/// One row of a node's option table.
public struct OptionSpec: Sendable {
    public var name: String
    public var type: OptionType
    /// nil: the option is required (or optional without default when `required` is false).
    public var defaultValue: OptionValue?
    public var minimum: Double?
    public var maximum: Double?
    public var required: Bool
    public var help: String
    /// For an `inputFile`: reads the file as the node will and throws what is wrong with it, so
    /// `validate` reports a bad policy before anything runs.
    public var checkFile: (@Sendable (String) throws -> Void)?

    public init(
        _ name: String, _ type: OptionType, default defaultValue: OptionValue? = nil,
        min minimum: Double? = nil, max maximum: Double? = nil, required: Bool = false, help: String,
        checkFile: (@Sendable (String) throws -> Void)? = nil
    ) {
        self.checkFile = checkFile
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.minimum = minimum
        self.maximum = maximum
        self.required = required
        self.help = help
    }

    public var rangeDescription: String? {
        switch (minimum, maximum) {
        case let (lo?, hi?): "\(Self.format(lo)) .. \(Self.format(hi))"
        case let (lo?, nil): "≥ \(Self.format(lo))"
        case let (nil, hi?): "≤ \(Self.format(hi))"
        case (nil, nil): nil
        }
    }

    private static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    /// Parses text from a pipeline file or `--set` into a value of this option's type, checking
    /// the range. The error text is the hint a user needs.
    public func parse(_ text: String) -> Result<OptionValue, OptionError> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        switch type {
        case .int:
            guard let v = Int(trimmed) else { return .failure(.wrongType(expected: "an integer", got: text)) }
            return checkRange(Double(v)).map { .int(v) }
        case .double:
            guard let v = Double(trimmed), v.isFinite else { return .failure(.wrongType(expected: "a number", got: text)) }
            return checkRange(v).map { .double(v) }
        case .bool:
            switch trimmed.lowercased() {
            case "true", "yes", "on", "1": return .success(.bool(true))
            case "false", "no", "off", "0": return .success(.bool(false))
            default: return .failure(.wrongType(expected: "true or false", got: text))
            }
        case .string, .inputFile, .inputFolder, .outputPath, .media:
            return .success(.string(text))
        case .choice(let names):
            guard names.contains(trimmed) else { return .failure(.notAChoice(got: text, choices: names)) }
            return .success(.string(trimmed))
        case .rational:
            guard let r = Rational(parsing: trimmed), r.denominator > 0 else {
                return .failure(.wrongType(expected: "a rate like 2, 0.5 or 30000/1001", got: text))
            }
            return checkRange(r.doubleValue).map { .string(trimmed) }
        case .size:
            guard Self.parseSize(trimmed) != nil else {
                return .failure(.wrongType(expected: "a size like 224x224, 640x or x360", got: text))
            }
            return .success(.string(trimmed))
        }
    }

    private func checkRange(_ v: Double) -> Result<Void, OptionError> {
        if let minimum, v < minimum { return .failure(.outOfRange(got: v, range: rangeDescription ?? "")) }
        if let maximum, v > maximum { return .failure(.outOfRange(got: v, range: rangeDescription ?? "")) }
        return .success(())
    }

    /// "WxH" → (W, H); either side may be missing (nil) but not both.
    public static func parseSize(_ text: String) -> (width: Int?, height: Int?)? {
        FrameSize(parsing: text).map { ($0.width, $0.height) }
    }
}

public enum OptionError: UserFacingError, Equatable {
    case wrongType(expected: String, got: String)
    case outOfRange(got: Double, range: String)
    case notAChoice(got: String, choices: [String])

    public var message: String {
        switch self {
        case .wrongType(let expected, let got): "expected \(expected), got '\(got)'"
        case .outOfRange(let got, let range): "\(got) is out of range (\(range))"
        case .notAChoice(let got, let choices): "'\(got)' is not one of \(choices.joined(separator: ", "))"
        }
    }
}

/// A node's resolved options: every declared option has its value or default, and every path
/// option is absolute.
public struct NodeOptions: Sendable {
    public private(set) var values: [String: OptionValue]
    /// The pipeline's output folder (absolute): where batch journals and relative outputs go.
    public var outputDirectory: String

    public init(_ values: [String: OptionValue], outputDirectory: String = FileManager.default.currentDirectoryPath) {
        self.values = values
        self.outputDirectory = outputDirectory
    }

    public func int(_ name: String) -> Int? {
        if case .int(let v)? = values[name] { return v }
        return nil
    }

    public func double(_ name: String) -> Double? {
        switch values[name] {
        case .double(let v)?: v
        case .int(let v)?: Double(v)
        default: nil
        }
    }

    public func string(_ name: String) -> String? {
        if case .string(let v)? = values[name] { return v }
        return nil
    }

    public func bool(_ name: String) -> Bool? {
        if case .bool(let v)? = values[name] { return v }
        return nil
    }
}
