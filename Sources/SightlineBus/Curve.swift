import CZeroMQ
import Foundation
import SightlineCore

/// A CURVE key pair in Z85 text (40 characters each), read from and written to the certificate
/// files ZeroMQ's own tools use (CZMQ's `zcert`, pyzmq's `zmq.auth.create_certificates`):
/// `NAME.key` holds the public key only and may be shared; `NAME.key_secret` holds both and
/// stays private. Using that format means a pyzmq subscriber loads our keys with
/// `zmq.auth.load_certificate` and a folder of allowed clients is the same on both sides.
public struct CurveKeyPair: Sendable, Equatable {
    public var publicKey: String
    /// Nil for a public certificate.
    public var secretKey: String?

    public init(publicKey: String, secretKey: String?) throws {
        guard Self.isZ85Key(publicKey) else { throw CurveError.badKey("public key", publicKey.count) }
        if let secretKey, !Self.isZ85Key(secretKey) { throw CurveError.badKey("secret key", secretKey.count) }
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh key pair from libzmq (which draws from the system's random source).
    public static func generate() throws -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else {
            throw CurveError.unsupported("zmq_curve_keypair: \(String(cString: zmq_strerror(zmq_errno())))")
        }
        func text(_ z85: [CChar]) -> String { String(decoding: z85.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return try CurveKeyPair(publicKey: text(publicKey), secretKey: text(secretKey))
    }

    /// 40 characters of the Z85 alphabet encode 32 bytes.
    static func isZ85Key(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { z85Alphabet.contains($0) }
    }

    private static let z85Alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)

    /// The 32 key bytes (what ZAP hands to the handler).
    static func decode(_ z85: String) -> [UInt8]? {
        guard isZ85Key(z85) else { return nil }
        var bytes = [UInt8](repeating: 0, count: 32)
        guard zmq_z85_decode(&bytes, z85) != nil else { return nil }
        return bytes
    }

    /// Reads a certificate file. Only `public-key` and `secret-key` lines matter; a file over
    /// 64 KiB is not a certificate and is refused before it is read whole.
    public static func load(_ path: String) throws -> CurveKeyPair {
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
            throw CurveError.unreadable(path, "no such file")
        }
        if let size = attributes[.size] as? Int, size > 65_536 { throw CurveError.unreadable(path, "\(size) bytes is too large for a certificate") }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw CurveError.unreadable(path, "not readable UTF-8 text")
        }
        var publicKey: String?
        var secretKey: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t\"'"))
            if name == "public-key" { publicKey = value }
            if name == "secret-key" { secretKey = value }
        }
        guard let publicKey else { throw CurveError.unreadable(path, "no public-key line") }
        do { return try CurveKeyPair(publicKey: publicKey, secretKey: secretKey) } catch let error as CurveError {
            throw CurveError.unreadable(path, error.message)
        }
    }

    /// Loads a certificate that must carry the secret key.
    public static func loadSecret(_ path: String) throws -> CurveKeyPair {
        let pair = try load(path)
        guard pair.secretKey != nil else { throw CurveError.unreadable(path, "holds no secret-key (use NAME.key_secret, not NAME.key)") }
        return pair
    }

    /// Writes `BASE.key` (public) and `BASE.key_secret` (both keys, mode 0600); refuses to
    /// overwrite either, since replacing a key silently locks out whoever holds the old one.
    public func write(base: String) throws -> (publicPath: String, secretPath: String) {
        let publicPath = base + ".key"
        let secretPath = base + ".key_secret"
        for path in [publicPath, secretPath] where FileManager.default.fileExists(atPath: path) {
            throw CurveError.unreadable(path, "already exists; remove it first to replace the key")
        }
        let header = "#   ZeroMQ CURVE certificate written by sightline keys generate\n"
        let publicText = header + "#   Public: share this file with the other side.\n\nmetadata\ncurve\n    public-key = \"\(publicKey)\"\n"
        guard FileManager.default.createFile(atPath: publicPath, contents: Data(publicText.utf8), attributes: [.posixPermissions: 0o644]) else {
            throw CurveError.unreadable(publicPath, "cannot create it")
        }
        if let secretKey {
            let secretText = header + "#   SECRET: do not share this file or loosen its permissions.\n\nmetadata\ncurve\n    public-key = \"\(publicKey)\"\n    secret-key = \"\(secretKey)\"\n"
            guard FileManager.default.createFile(atPath: secretPath, contents: Data(secretText.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CurveError.unreadable(secretPath, "cannot create it")
            }
        }
        return (publicPath, secretPath)
    }

    /// The public keys of every `*.key` certificate in a folder (the allowed clients).
    public static func loadPublicKeys(folder: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CurveError.unreadable(folder, "not a folder")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".key") }.sorted()
        return try names.map { try load(folder + "/" + $0).publicKey }
    }
}

/// The server side of CURVE: our secret key and the clients allowed in.
public struct CurveServerSettings: Sendable {
    public var serverKeys: CurveKeyPair
    public var allowedClientKeys: [String]

    public init(serverKeys: CurveKeyPair, allowedClientKeys: [String]) throws {
        guard serverKeys.secretKey != nil else { throw CurveError.badKey("server secret key", 0) }
        self.serverKeys = serverKeys
        self.allowedClientKeys = allowedClientKeys
    }

    /// From a server `.key_secret` file and a folder of client `.key` files.
    public init(secretKeyFile: String, clientKeysFolder: String) throws {
        try self.init(serverKeys: CurveKeyPair.loadSecret(secretKeyFile),
                      allowedClientKeys: CurveKeyPair.loadPublicKeys(folder: clientKeysFolder))
    }
}

/// The client side: our key pair and the server's public key.
public struct CurveClientSettings: Sendable {
    public var clientKeys: CurveKeyPair
    public var serverPublicKey: String

    public init(clientKeys: CurveKeyPair, serverPublicKey: String) throws {
        guard clientKeys.secretKey != nil else { throw CurveError.badKey("client secret key", 0) }
        guard CurveKeyPair.isZ85Key(serverPublicKey) else { throw CurveError.badKey("server public key", serverPublicKey.count) }
        self.clientKeys = clientKeys
        self.serverPublicKey = serverPublicKey
    }

    public init(keyFile: String, serverKeyFile: String) throws {
        try self.init(clientKeys: CurveKeyPair.loadSecret(keyFile), serverPublicKey: CurveKeyPair.load(serverKeyFile).publicKey)
    }
}

public enum CurveError: UserFacingError, Equatable {
    case badKey(String, Int)
    case unreadable(String, String)
    case unsupported(String)

    public var message: String {
        switch self {
        case .badKey(let what, let length): "the \(what) is not a 40-character Z85 CURVE key (\(length) characters)"
        case .unreadable(let path, let why): "CURVE certificate '\(path)': \(why)"
        case .unsupported(let why): "this libzmq cannot do CURVE: \(why)"
        }
    }

    public var hint: String? {
        switch self {
        case .badKey, .unreadable: "create keys with: sightline keys generate NAME"
        case .unsupported: "install a libzmq built with libsodium (Debian's libzmq5 is)"
        }
    }
}

/// ZeroMQ's authentication protocol (ZAP, RFC 27) for one context: libzmq asks a REP socket
/// bound at `inproc://zeromq.zap.01` about every CURVE handshake, and only the clients whose
/// public key is in the allowed set get in. Without a handler libzmq would let any client
/// with a valid handshake through, so a CURVE server always runs one.
final class ZAPHandler: @unchecked Sendable {
    private let socket: ZMQSocket
    private let allowed: Set<[UInt8]>
    private let lock = NSLock()
    private var stopRequested = false
    private let stoppedSignal = DispatchSemaphore(value: 0)
    private var _accepted = 0
    private var _refused = 0

    var accepted: Int { lock.withLock { _accepted } }
    var refused: Int { lock.withLock { _refused } }

    init(context: ZMQContext, allowedClientKeys: [String]) throws {
        allowed = Set(allowedClientKeys.compactMap(CurveKeyPair.decode))
        socket = try ZMQSocket(context: context, type: ZMQ_REP)
        do { try socket.bind("inproc://zeromq.zap.01") } catch {
            throw BusError.socket("cannot start the CURVE authenticator (another in this context?): \(error)")
        }
        let thread = Thread { [self] in run() }
        thread.name = "sightline-zap"
        thread.start()
    }

    private func run() {
        while !lock.withLock({ stopRequested }) {
            do {
                guard let parts = try socket.receive(timeout: 0.1) else { continue }
                _ = try socket.send(parts: reply(to: parts), dontWait: false)
            } catch {
                break  // the context is being terminated
            }
        }
        socket.close(lingerMilliseconds: 0)
        stoppedSignal.signal()
    }

    /// Request: version, request id, domain, address, identity, mechanism, credentials…
    /// Reply: version, request id, status code, status text, user id, metadata.
    func reply(to request: [[UInt8]]) -> [[UInt8]] {
        let requestID = request.count > 1 ? request[1] : []
        func answer(_ code: String, _ text: String, user: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), requestID, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard request.count >= 7, request[0] == Array("1.0".utf8) else { return answer("500", "malformed ZAP request") }
        guard request[5] == Array("CURVE".utf8) else {
            lock.withLock { _refused += 1 }
            return answer("400", "only CURVE clients are allowed")
        }
        guard allowed.contains(request[6]) else {
            lock.withLock { _refused += 1 }
            return answer("400", "client key not allowed")
        }
        lock.withLock { _accepted += 1 }
        return answer("200", "OK")
    }

    /// Stops the thread and closes its socket (before the context is terminated).
    func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopRequested = true }
            return !stopRequested
        }
        if first { stoppedSignal.wait() }
    }
}
