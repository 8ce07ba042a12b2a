import COrtp
@testable import EmotionORTP
import Foundation
import Testing

@Suite("oRTP's log lines")
struct ORTPLogTests {
    @Test("routine oRTP errors (a port in use, the jitter buffer restarting) go to debug; others stay errors")
    func severities() {
        #expect(
            ORTPLibrary.severity(
                of: BCTBX_LOG_ERROR,
                "Fail to bind rtp/rtcp socket to (addr=127.0.0.1 port=40000) : Address already in use.") == .debug)
        #expect(
            ORTPLibrary.severity(of: BCTBX_LOG_ERROR, "Jitter buffer stays unconverged for one second, reset it.")
                == .debug)
        #expect(ORTPLibrary.severity(of: BCTBX_LOG_ERROR, "Error receiving RTP packet: Bad file descriptor") == .error)
        #expect(ORTPLibrary.severity(of: BCTBX_LOG_FATAL, "out of memory") == .critical)
    }
}
