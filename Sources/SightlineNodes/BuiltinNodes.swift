import SightlineGraph

/// Every node type the CLI knows.
public enum BuiltinNodes {
    public static let registry = NodeRegistry([
        VideoSourceNode.factory,
        FilesSourceNode.factory,
        SyntheticSource.factory,
        FrameStatsNode.factory,
        PerceptualHashNode.factory,
        PassthroughNode.factory,
        PublishSink.factory,
        NATSSink.factory,
        LinkSendNode.factory,
        LinkReceiveNode.factory,
        VLMCaptionsNode.factory,
        TranscribeNode.factory,
        JSONLSink.factory,
        IndexSink.factory,
        NullSink.factory,
        LabelsNode.factory,
        NSFWNode.factory,
        OCRNode.factory,
        ShotsNode.factory,
        ModerationNode.factory,
        SemanticEmbeddingNode.factory,
        CaptionsNode.factory,
        SegmentEmbeddingsNode.factory,
        RegionsNode.factory,
        FacesNode.factory,
        PeopleNode.factory,
        TracksNode.factory,
        RedactNode.factory,
    ])
}
