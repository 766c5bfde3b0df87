import SightlineNATS
import Testing

/// The NATS sink's bounded buffer as a timeline: fill, overflow, a failed send put back, the
/// drop report taken once, and what is held at the end.
@Suite struct PublishBufferTests {
    @Test func oldestDropsFirstAndEveryDropIsCountedOnce() {
        var buffer = PublishBuffer<Int>(capacity: 3)
        #expect(buffer.push(1, source: "a") == nil)
        #expect(buffer.push(2, source: "b") == nil)
        #expect(buffer.push(3, source: "a") == nil)
        #expect(buffer.push(4, source: "b") == "a")   // 1 goes
        #expect(buffer.push(5, source: "a") == "b")   // 2 goes
        #expect(buffer.count == 3 && buffer.totalDrops == 2)
        let first = buffer.popFirst()
        #expect(first?.message == 3)
        // The send failed: back at the front, order kept.
        buffer.pushFront(3, source: "a")
        #expect(buffer.popFirst()?.message == 3)
        #expect(buffer.takeDropReport() == ["a": 1, "b": 1])
        #expect(buffer.takeDropReport().isEmpty)
        // Put back into a buffer that filled meanwhile: that message is the drop.
        #expect(buffer.push(6, source: "c") == nil)
        buffer.pushFront(3, source: "a")
        #expect(buffer.count == 3 && buffer.totalDrops == 3)
        #expect(buffer.takeDropReport() == ["a": 1])
        #expect(buffer.dropAll() == ["b": 1, "a": 1, "c": 1])
        #expect(buffer.isEmpty && buffer.totalDrops == 6)
        #expect(buffer.takeDropReport() == ["a": 1, "b": 1, "c": 1])
    }
}
