import CNats
import Foundation
import SightlineCore

/// A NATS or JetStream call that failed, with the operation, the client's status text and,
/// for JetStream API errors, the server's error code.
public struct NATSError: UserFacingError {
    public let operation: String
    public let status: natsStatus
    public let jetStreamCode: Int
    let detail: String

    init(_ operation: String, _ status: natsStatus, jetStream: jsErrCode = jsErrCode(0)) {
        self.operation = operation
        self.status = status
        self.jetStreamCode = Int(jetStream.rawValue)
        var last = NATS_OK
        let text = nats_GetLastError(&last).map { String(cString: $0) } ?? ""
        self.detail = text.isEmpty ? String(cString: natsStatus_GetText(status)) : text
    }

    public var message: String {
        "NATS: \(operation): \(detail)" + (jetStreamCode != 0 ? " (JetStream error \(jetStreamCode))" : "")
    }

    public var hint: String? {
        switch status {
        case NATS_NO_SERVER: "is nats-server running (with -js) at that URL?"
        case NATS_NOT_PERMITTED: "check the credentials (--nats-creds, --nats-token-file, user:password in the URL)"
        default: jetStreamCode == Int(JSNotEnabledErr.rawValue) || jetStreamCode == Int(JSNotEnabledForAccountErr.rawValue)
            ? "start nats-server with JetStream on (nats-server -js)" : nil
        }
    }

    /// The call timed out (a fetch that found no message, a request the server did not answer).
    public var isTimeout: Bool { status == NATS_TIMEOUT }
}

@inline(__always) func check(_ operation: @autoclosure () -> String, _ status: natsStatus, jetStream: jsErrCode = jsErrCode(0)) throws {
    if status != NATS_OK { throw NATSError(operation(), status, jetStream: jetStream) }
}

/// How to reach and log in to NATS. URLs are tried in order (a cluster's seeds); the client
/// moves to another when one goes away and reconnects with `backoff` forever.
public struct NATSSettings: Sendable {
    public var urls: [String]
    /// Shown by the server (`nats-server` monitoring, connz): the worker or command name.
    public var name = "sightline"
    public var token: String?
    /// A `.creds` file (user JWT and nkey seed), as `nsc` writes it.
    public var credentialsFile: String?
    /// An nkey: the user's public key and the file holding its seed.
    public var nkey: (publicKey: String, seedFile: String)?
    /// CA certificate(s) to verify a TLS server with. TLS itself is used when the URL says
    /// `tls://` or the server asks for it.
    public var caFile: String?
    public var connectTimeout: Double = 5
    public var backoff = ExponentialBackoff()
    /// Return from `init` even when no server answers yet, and keep trying in the background
    /// (a live pipeline must start while NATS is away). Publishing fails until it connects.
    public var connectInBackground = false

    public init(urls: [String]) { self.urls = urls }

    /// `nats://a:4222,nats://b:4222` or one URL; a bare `host:port` gets `nats://`.
    public static func parseURLs(_ text: String) throws -> [String] {
        let urls = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .map { $0.contains("://") ? $0 : "nats://" + $0 }
        guard !urls.isEmpty else { throw ValueError("no NATS URL in '\(text)'", hint: "e.g. --nats nats://127.0.0.1:4222") }
        for url in urls {
            guard let scheme = url.split(separator: ":").first, ["nats", "tls"].contains(scheme.lowercased()) else {
                throw ValueError("'\(url)' is not a NATS URL", hint: "use nats://HOST:PORT or tls://HOST:PORT")
            }
        }
        return urls
    }
}

struct ValueError: UserFacingError {
    let message: String
    let hint: String?
    init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
}

/// Owns one NATS connection and its JetStream context. The C client is thread-safe: one
/// connection serves a worker's loop and its progress timer together.
public final class NATSConnection: @unchecked Sendable {
    let handle: OpaquePointer
    let jetStreamHandle: OpaquePointer
    public let settings: NATSSettings
    private let lock = NSLock()
    private var closed = false

    public init(_ settings: NATSSettings) throws {
        self.settings = settings
        var options: OpaquePointer?
        try check("options", natsOptions_Create(&options))
        guard let options else { throw NATSError("options", NATS_NO_MEMORY) }
        defer { natsOptions_Destroy(options) }
        var urlCopies = settings.urls.map { strdup($0) }
        defer { urlCopies.forEach { free($0) } }
        try urlCopies.withUnsafeMutableBufferPointer { buffer in
            try buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                try check("servers \(settings.urls.joined(separator: ","))", natsOptions_SetServers(options, $0, Int32(buffer.count)))
            }
        }
        try check("name", natsOptions_SetName(options, settings.name))
        try check("timeout", natsOptions_SetTimeout(options, Int64(settings.connectTimeout * 1000)))
        if let token = settings.token { try check("token", natsOptions_SetToken(options, token)) }
        if let file = settings.credentialsFile { try check("credentials \(file)", natsOptions_SetUserCredentialsFromFiles(options, file, nil)) }
        if let nkey = settings.nkey { try check("nkey \(nkey.seedFile)", natsOptions_SetNKeyFromSeed(options, nkey.publicKey, nkey.seedFile)) }
        if let ca = settings.caFile {
            try check("TLS", natsOptions_SetSecure(options, true))
            try check("CA file \(ca)", natsOptions_LoadCATrustedCertificates(options, ca))
        }
        // Never give up on reconnecting: a worker outlives server restarts. The delay between
        // rounds over the URL list grows with each failed round (ExponentialBackoff), with jitter
        // so a fleet of workers does not reconnect in lockstep.
        try check("reconnect", natsOptions_SetMaxReconnect(options, -1))
        let backoff = Unmanaged.passRetained(BackoffBox(settings.backoff))
        try check("reconnect delay", natsOptions_SetCustomReconnectDelay(options, { _, attempts, closure in
            guard let closure else { return 1000 }
            let box = Unmanaged<BackoffBox>.fromOpaque(closure).takeUnretainedValue()
            return Int64(box.backoff.delay(afterFailedRounds: Int(attempts), unit: Double.random(in: 0..<1)) * 1000)
        }, backoff.toOpaque()))
        // Messages published while disconnected wait in this buffer (bytes), then fail.
        try check("reconnect buffer", natsOptions_SetReconnectBufSize(options, 8 << 20))
        if settings.connectInBackground {
            // With a connected callback the client connects in the background; without one it
            // would retry inside natsConnection_Connect, blocking the caller.
            try check("retry on failed connect", natsOptions_SetRetryOnFailedConnect(options, true, { _, _ in }, nil))
        }
        var connection: OpaquePointer?
        let status = natsConnection_Connect(&connection, options)
        guard status == NATS_OK || (settings.connectInBackground && status == NATS_NOT_YET_CONNECTED), let connection else {
            backoff.release()
            throw NATSError("connect to \(settings.urls.joined(separator: ","))", status)
        }
        var context: OpaquePointer?
        let jsStatus = natsConnection_JetStream(&context, connection, nil)
        guard jsStatus == NATS_OK, let context else {
            natsConnection_Destroy(connection)
            backoff.release()
            throw NATSError("JetStream context", jsStatus)
        }
        self.handle = connection
        self.jetStreamHandle = context
        self.backoffBox = backoff
    }

    private var backoffBox: Unmanaged<BackoffBox>?

    /// Whether the connection is up now (false while it reconnects).
    public var isConnected: Bool { natsConnection_Status(handle) == NATS_CONN_STATUS_CONNECTED }

    /// Publishes on core NATS (no JetStream acknowledgement): buffered while reconnecting.
    public func publish(subject: String, data: Data) throws {
        let status = data.withUnsafeBytes { natsConnection_Publish(handle, subject, $0.baseAddress, Int32($0.count)) }
        try check("publish \(subject)", status)
    }

    /// Publishes `data` on `subject` with one header field; into a stream (acknowledged) when
    /// `intoStream`, else on core NATS.
    public func publish(subject: String, data: [UInt8], headerKey: String, headerValue: String, intoStream: Bool) throws {
        var code = jsErrCode(0)
        let status = data.withUnsafeBytes { bytes in
            sightline_publish_with_header(handle, intoStream ? jetStreamHandle : nil, subject, bytes.baseAddress, Int32(bytes.count),
                                          headerKey, headerValue, &code)
        }
        try check("publish \(subject)", status, jetStream: code)
    }

    /// Waits until the server has processed everything published so far.
    public func flush(timeout: Double) throws {
        try check("flush", natsConnection_FlushTimeout(handle, Int64(timeout * 1000)))
    }

    public var jetStream: JetStream { JetStream(connection: self) }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        natsConnection_Close(handle)
    }

    deinit {
        close()
        jsCtx_Destroy(jetStreamHandle)
        natsConnection_Destroy(handle)
        backoffBox?.release()
    }
}

private final class BackoffBox {
    let backoff: ExponentialBackoff
    init(_ backoff: ExponentialBackoff) { self.backoff = backoff }
}
