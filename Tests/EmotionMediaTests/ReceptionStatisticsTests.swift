import EmotionMedia
import EmotionTestSupport
import Foundation
import Testing

@Suite("RTP statistics")
struct ReceptionStatisticsTests {
    @Test("loss, reordering, duplicates, sequence wrap and SSRC change per RFC 3550")
    func statistics() {
        var s = ReceptionStatistics(clockRate: 8000)
        var t = 0.0
        func rx(_ seq: UInt16, ssrc: UInt32 = 1) -> ReceptionStatistics.Disposition {
            t += 0.02
            return s.record(sequence: seq, timestamp: UInt32(t * 8000), ssrc: ssrc, arrival: t)
        }
        #expect(rx(65533) == .inOrder(gap: 0))
        #expect(rx(65534) == .inOrder(gap: 0))
        #expect(rx(0) == .inOrder(gap: 1))  // 65535 lost, wrapped
        #expect(rx(65535) == .reordered)  // ...and arrives late
        #expect(rx(0) == .duplicate)
        #expect(rx(3) == .inOrder(gap: 2))  // 1 and 2 lost
        #expect(s.expected == 7)
        #expect(s.received == 5)
        #expect(s.lost == 2)
        #expect(s.reordered == 1 && s.duplicates == 1)
        #expect(rx(500, ssrc: 2) == .newSource)
        #expect(s.ssrcChanges == 1)
        #expect(rx(501, ssrc: 2) == .inOrder(gap: 0))
        #expect(s.jitter >= 0)
    }
}
