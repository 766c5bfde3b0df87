import Foundation
import SightlineNATS

/// Every message a JetStream stream holds on `filter`, read by a durable consumer of its own
/// and acknowledged: what a late subscriber would replay.
func readWholeStream(_ url: String, stream: String, durable: String, filter: String) throws -> [JetStreamMessage] {
    let connection = try NATSConnection(NATSSettings(urls: [url]))
    let js = connection.jetStream
    try js.addPullConsumer(stream: stream, durable: durable, filter: filter, ackWait: 30, maxDeliver: 1)
    let subscription = try js.pullSubscription(stream: stream, durable: durable, subject: filter)
    var messages: [JetStreamMessage] = []
    while true {
        let batch = try subscription.fetch(count: 256, timeout: 1)
        if batch.isEmpty { break }
        for message in batch {
            messages.append(message)
            try message.ack()
        }
    }
    return messages
}
