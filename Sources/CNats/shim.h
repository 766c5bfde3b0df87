#ifndef SIGHTLINE_CNATS_SHIM_H
#define SIGHTLINE_CNATS_SHIM_H
// The NATS C client (Debian's libnats-dev) and a few helpers that fill its configuration
// structs. The structs hold `const char *` fields and nested pointers that Swift can only fill
// inside nested withCString closures; one C function per shape keeps that out of Swift.
#include <nats.h>
#include <string.h>

/// A JetStream stream on one subject filter (`sightline.work.>`). `work_queue` selects the
/// work-queue retention (a message is removed once acknowledged); otherwise limits retention
/// with `max_age_ns` (0: forever). `replicas` is 1 on a single server, 3 in a 3-node cluster.
static inline natsStatus sightline_js_add_stream(jsCtx *js, const char *name, const char *subject,
                                                 bool work_queue, int64_t max_age_ns, int replicas,
                                                 int64_t duplicate_window_ns, jsErrCode *error_code) {
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = name;
    const char *subjects[1] = {subject};
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Retention = work_queue ? js_WorkQueuePolicy : js_LimitsPolicy;
    config.Storage = js_FileStorage;
    config.MaxAge = max_age_ns;
    config.Replicas = replicas;
    if (duplicate_window_ns > 0) config.Duplicates = duplicate_window_ns;
    jsStreamInfo *info = NULL;
    natsStatus status = js_AddStream(&info, js, &config, NULL, error_code);
    // Already there with the same settings: fine; with other settings: update it.
    if (status != NATS_OK && error_code && *error_code == JSStreamNameExistErr) {
        status = js_UpdateStream(&info, js, &config, NULL, error_code);
    }
    jsStreamInfo_Destroy(info);
    return status;
}

/// A durable pull consumer with explicit acks: `ack_wait_ns` before an unacknowledged message
/// is redelivered, at most `max_deliver` deliveries (the worker terminates it on the last one).
static inline natsStatus sightline_js_add_pull_consumer(jsCtx *js, const char *stream, const char *durable,
                                                        const char *filter, int64_t ack_wait_ns,
                                                        int64_t max_deliver, jsErrCode *error_code) {
    jsConsumerConfig config;
    jsConsumerConfig_Init(&config);
    config.Durable = durable;
    config.AckPolicy = js_AckExplicit;
    config.AckWait = ack_wait_ns;
    config.MaxDeliver = max_deliver;
    config.FilterSubject = filter;
    config.DeliverPolicy = js_DeliverAll;
    jsConsumerInfo *info = NULL;
    natsStatus status = js_AddConsumer(&info, js, stream, &config, NULL, error_code);
    jsConsumerInfo_Destroy(info);
    return status;
}

/// Publishes with a message id, so the stream drops a second copy inside its duplicate window
/// (a submit run twice). `*duplicate` says whether the server recognised it as one.
static inline natsStatus sightline_js_publish(jsCtx *js, const char *subject, const void *data, int length,
                                              const char *message_id, bool *duplicate, uint64_t *sequence,
                                              jsErrCode *error_code) {
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MsgId = message_id;
    jsPubAck *ack = NULL;
    natsStatus status = js_Publish(&ack, js, subject, data, length, &options, error_code);
    if (status == NATS_OK && ack) {
        if (duplicate) *duplicate = ack->Duplicate;
        if (sequence) *sequence = ack->Sequence;
    }
    jsPubAck_Destroy(ack);
    return status;
}

/// A stream's message count, byte size and sequence range.
static inline natsStatus sightline_js_stream_state(jsCtx *js, const char *stream, uint64_t *messages,
                                                   uint64_t *bytes, uint64_t *first_sequence, uint64_t *last_sequence,
                                                   jsErrCode *error_code) {
    jsStreamInfo *info = NULL;
    natsStatus status = js_GetStreamInfo(&info, js, stream, NULL, error_code);
    if (status == NATS_OK && info) {
        *messages = info->State.Msgs;
        *bytes = info->State.Bytes;
        *first_sequence = info->State.FirstSeq;
        *last_sequence = info->State.LastSeq;
    }
    jsStreamInfo_Destroy(info);
    return status;
}

/// A consumer's counts: messages not yet delivered, delivered but not acknowledged,
/// redelivered, and pull requests waiting (idle workers).
static inline natsStatus sightline_js_consumer_state(jsCtx *js, const char *stream, const char *durable,
                                                     uint64_t *pending, int64_t *ack_pending,
                                                     int64_t *redelivered, int64_t *waiting,
                                                     jsErrCode *error_code) {
    jsConsumerInfo *info = NULL;
    natsStatus status = js_GetConsumerInfo(&info, js, stream, durable, NULL, error_code);
    if (status == NATS_OK && info) {
        *pending = info->NumPending;
        *ack_pending = info->NumAckPending;
        *redelivered = info->NumRedelivered;
        *waiting = info->NumWaiting;
    }
    jsConsumerInfo_Destroy(info);
    return status;
}

/// Binds a key-value bucket, creating it when absent. `ttl_ns` is how long a key lives
/// without being written again (0: forever); `history` how many revisions a key keeps.
static inline natsStatus sightline_kv_bucket(kvStore **kv, jsCtx *js, const char *bucket, int64_t ttl_ns,
                                             int history, int replicas) {
    natsStatus status = js_KeyValue(kv, js, bucket);
    if (status == NATS_OK) return status;
    kvConfig config;
    kvConfig_Init(&config);
    config.Bucket = bucket;
    config.TTL = ttl_ns;
    config.History = history;
    config.Replicas = replicas;
    natsStatus created = js_CreateKeyValue(kv, js, &config);
    if (created == NATS_OK) return created;
    // Two workers starting together both miss the bucket and both create it; the second
    // create fails ("subjects overlap with an existing stream", seen in a clean-clone run).
    // The bucket exists by then: bind to it.
    if (js_KeyValue(kv, js, bucket) == NATS_OK) return NATS_OK;
    return created;
}

/// The delivery count of a JetStream message (1 on its first delivery).
static inline natsStatus sightline_msg_delivery_count(natsMsg *msg, uint64_t *count) {
    jsMsgMetaData *meta = NULL;
    natsStatus status = natsMsg_GetMetaData(&meta, msg);
    if (status == NATS_OK && meta) *count = meta->NumDelivered;
    jsMsgMetaData_Destroy(meta);
    return status;
}

/// A pull subscription bound to an existing durable consumer of `stream`.
static inline natsStatus sightline_js_pull_bind(natsSubscription **sub, jsCtx *js, const char *stream,
                                                const char *durable, const char *subject, jsErrCode *error_code) {
    jsSubOptions options;
    jsSubOptions_Init(&options);
    options.Stream = stream;
    options.Consumer = durable;
    return js_PullSubscribe(sub, js, subject, durable, NULL, &options, error_code);
}

/// The message at index `i` of a fetched list, taken out of the list (the caller destroys it).
static inline natsMsg *sightline_msg_list_take(natsMsgList *list, int i) {
    natsMsg *msg = list->Msgs[i];
    list->Msgs[i] = NULL;
    return msg;
}

/// Publishes one message with one header field: on core NATS when `js` is NULL, else into a
/// stream (waiting for its acknowledgement).
static inline natsStatus sightline_publish_with_header(natsConnection *nc, jsCtx *js, const char *subject,
                                                       const void *data, int length, const char *key,
                                                       const char *value, jsErrCode *error_code) {
    natsMsg *msg = NULL;
    natsStatus status = natsMsg_Create(&msg, subject, NULL, (const char *)data, length);
    if (status == NATS_OK && key) status = natsMsgHeader_Set(msg, key, value);
    if (status == NATS_OK) {
        if (js) {
            jsPubAck *ack = NULL;
            status = js_PublishMsg(&ack, js, msg, NULL, error_code);
            jsPubAck_Destroy(ack);
        } else {
            status = natsConnection_PublishMsg(nc, msg);
        }
    }
    natsMsg_Destroy(msg);
    return status;
}
#endif
