import SightlineCore

/// An option value a contract entry depends on (`delta: true`, `window: 0`).
public struct OptionCondition: Sendable, CustomStringConvertible {
    public var option: String
    public var value: OptionValue

    public init(_ option: String, is value: OptionValue) {
        self.option = option
        self.value = value
    }

    public func holds(for options: NodeOptions) -> Bool {
        switch (options.values[option], value) {
        case let (.double(a)?, .int(b)): a == Double(b)
        case let (.int(a)?, .double(b)): Double(a) == b
        case let (actual?, expected): actual == expected
        case (nil, _): false
        }
    }

    public var description: String { "\(option): \(value)" }
}

/// What a node reads from the nodes before it and what it adds, by result kind (the typed
/// contracts swift-nio handlers declare as InboundIn / InboundOut). `validate` checks that
/// every need is met by some node upstream.
public struct NodeContract: Sendable {
    public struct Need: Sendable {
        /// Met when a node upstream produces any of these.
        public var anyOf: [ResultKind]
        /// Only when the node's options say so (nil: always).
        public var when: OptionCondition?
        /// What to do when nothing upstream provides it.
        public var hint: String

        public init(anyOf: [ResultKind], when: OptionCondition? = nil, hint: String) {
            self.anyOf = anyOf
            self.when = when
            self.hint = hint
        }
    }

    public struct Output: Sendable {
        public var kind: ResultKind
        public var when: OptionCondition?

        public init(_ kind: ResultKind, when: OptionCondition? = nil) {
            self.kind = kind
            self.when = when
        }
    }

    public var needs: [Need]
    public var produces: [Output]
    /// A comma-separated option naming the kinds the node passes on from elsewhere (the core
    /// side of a split pipeline carries what the edge part produced).
    public var producesListedIn: String?

    public init(needs: [Need] = [], produces: [Output] = [], producesListedIn: String? = nil) {
        self.needs = needs
        self.produces = produces
        self.producesListedIn = producesListedIn
    }

    public static let none = NodeContract()

    public func needs(given options: NodeOptions) -> [Need] {
        needs.filter { $0.when?.holds(for: options) ?? true }
    }

    public func produces(given options: NodeOptions) -> Set<ResultKind> {
        var kinds = Set(produces.filter { $0.when?.holds(for: options) ?? true }.map(\.kind))
        if let producesListedIn, let listed = options.string(producesListedIn) {
            kinds.formUnion(listed.split(separator: ",").compactMap { ResultKind(rawValue: $0.trimmingCharacters(in: .whitespaces)) })
        }
        return kinds
    }

    /// `sightline nodes NAME`: "labels, or embeddings (when embeddings: true)".
    public var producesDescription: String {
        produces.isEmpty ? "nothing (passes on what it gets)" : produces.map { output in
            output.kind.rawValue + (output.when.map { " (when \($0))" } ?? "")
        }.joined(separator: ", ")
    }

    public var needsDescription: String {
        needs.isEmpty ? "nothing but frames or records from upstream" : needs.map { need in
            need.anyOf.map(\.rawValue).joined(separator: " or ") + (need.when.map { " (when \($0))" } ?? "")
        }.joined(separator: "; ")
    }
}
