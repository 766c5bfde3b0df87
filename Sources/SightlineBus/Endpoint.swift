import SightlineCore
/// A Savant-style endpoint: `pub+bind:tcp://127.0.0.1:5555`, `sub+connect:ipc:///tmp/s.ipc`.
/// The socket role comes first, then whether it binds or connects, then any ZeroMQ address.
public struct BusEndpoint: Sendable, Equatable, CustomStringConvertible {
    public enum Role: String, Sendable { case pub, sub }
    public enum Action: String, Sendable { case bind, connect }

    public var role: Role
    public var action: Action
    public var address: String

    public init(role: Role, action: Action, address: String) {
        self.role = role
        self.action = action
        self.address = address
    }

    /// Parses the written form. A bare address (`tcp://…`) is accepted for convenience with
    /// `defaultRole` and the role's usual action (publishers bind, subscribers connect).
    public init(parsing text: String, defaultRole: Role) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let colon = trimmed.firstIndex(of: ":") else { throw BusError.badEndpoint(text, "no address") }
        let head = String(trimmed[..<colon])
        if head.contains("+") {
            let parts = head.split(separator: "+").map(String.init)
            guard parts.count == 2, let role = Role(rawValue: parts[0]), let action = Action(rawValue: parts[1]) else {
                throw BusError.badEndpoint(text, "expected ROLE+ACTION:ADDRESS with ROLE pub or sub and ACTION bind or connect")
            }
            self.init(role: role, action: action, address: String(trimmed[trimmed.index(after: colon)...]))
        } else {
            self.init(role: defaultRole, action: defaultRole == .pub ? .bind : .connect, address: trimmed)
        }
        guard ["tcp://", "ipc://", "inproc://"].contains(where: { address.hasPrefix($0) }) else {
            throw BusError.badEndpoint(text, "the address must start with tcp://, ipc:// or inproc://")
        }
    }

    public var description: String { "\(role.rawValue)+\(action.rawValue):\(address)" }

    /// ipc and inproc stay on this machine, as does tcp on 127.0.0.0/8, ::1 or localhost;
    /// anything else (0.0.0.0, *, an interface, a remote host) can carry data off it.
    public var isLoopbackOnly: Bool {
        guard address.hasPrefix("tcp://") else { return true }
        var host = String(address.dropFirst("tcp://".count))
        // A connect address may name a local interface first: tcp://eth0;192.168.1.1:5555.
        if let semicolon = host.lastIndex(of: ";") { host = String(host[host.index(after: semicolon)...]) }
        if host.hasPrefix("[") {
            host = String(host.dropFirst().prefix { $0 != "]" })
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

public enum BusError: UserFacingError, Equatable {
    case badEndpoint(String, String)
    case socket(String)
    case noSubscribers(endpoint: String, wanted: Int, got: Int, seconds: Double)

    public var message: String {
        switch self {
        case .badEndpoint(let text, let why): "bad endpoint '\(text)': \(why)"
        case .socket(let why): why
        case .noSubscribers(let endpoint, let wanted, let got, let seconds):
            "'\(endpoint)': \(got) of \(wanted) subscribers connected within \(seconds) s"
        }
    }

    public var hint: String? {
        switch self {
        case .badEndpoint: "e.g. pub+bind:tcp://127.0.0.1:5555"
        case .socket: nil
        case .noSubscribers: "start them first, or lower wait_subscribers"
        }
    }
}
