import EmotionCore
import EmotionTestSupport
import Foundation
import Testing

/// A stream from a WebSocket stack nobody here wrote: Chromium's, driving Twilio's media stream
/// protocol (messages built in the page's script from Twilio's documentation) against `serve`.
@Suite("a Twilio media stream from headless Chromium")
struct BrowserStreamTests {
    @Test(
        "Chromium's WebSocket streams the sample call as Twilio does; the leg gets its events and ends at stop",
        .enabled(
            if: HeadlessChromium.executable != nil,
            "chromium is not on the PATH (scripts/install-deps.sh installs Debian's package): browser test skipped")
    )
    func twilioFromChromium() throws {
        let receiver = try EventReceiver()
        defer { receiver.stop() }
        let token = "ws-\(UUID().uuidString)"
        let service = try ServiceProcess(eventPort: receiver.port, token: token)
        defer { _ = service.terminate() }
        // The sample call's mu-law bytes, 20 ms (160 bytes) a media message, 12 s of them.
        let ulaw = try WAVFile(contentsOf: sampleCall).data
        let chunks = stride(from: 0, to: min(ulaw.count, 8000 * 12) - 160, by: 160).map {
            Data(ulaw[$0..<($0 + 160)]).base64EncodedString()
        }
        let payloads = String(data: try JSONSerialization.data(withJSONObject: chunks), encoding: .utf8)!
        let script = """
            new Promise((resolve) => {
              const ws = new WebSocket("ws://127.0.0.1:\(service.httpPort)/v1/stream/twilio?token=\(token)");
              const payloads = \(payloads);
              const sid = "MZbrowser";
              const timer = setTimeout(() => resolve("timeout"), 25000);
              ws.onerror = () => {};
              ws.onclose = (e) => { clearTimeout(timer); resolve("closed " + e.code); };
              ws.onopen = () => {
                ws.send(JSON.stringify({event: "connected", protocol: "Call", version: "1.0.0"}));
                ws.send(JSON.stringify({event: "start", sequenceNumber: "1", streamSid: sid,
                  start: {accountSid: "AC1", streamSid: sid, callSid: "CAbrowser", tracks: ["inbound"],
                          customParameters: {call_id: "browser-call"},
                          mediaFormat: {encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1}}}));
                // Four times real time: 20 ms of audio every 5 ms.
                let i = 0;
                const tick = setInterval(() => {
                  if (i < payloads.length) {
                    ws.send(JSON.stringify({event: "media", sequenceNumber: String(i + 2), streamSid: sid,
                      media: {track: "inbound", chunk: String(i + 1), timestamp: String(i * 20), payload: payloads[i]}}));
                    i += 1;
                  } else {
                    clearInterval(tick);
                    ws.send(JSON.stringify({event: "stop", sequenceNumber: String(i + 2), streamSid: sid,
                      stop: {accountSid: "AC1", callSid: "CAbrowser"}}));
                  }
                }, 5);
              };
            })
            """
        let browser = try HeadlessChromium(executable: try #require(HeadlessChromium.executable))
        defer { browser.close() }
        // From a page of the service's own origin (the supervisor page): Chromium keeps pages of no origin
        // (about:blank) from opening connections to loopback.
        let page = try browser.open("http://127.0.0.1:\(service.httpPort)/?token=\(token)")
        Thread.sleep(forTimeInterval: 1)
        let outcome = try browser.evaluate(script, session: page, timeout: 40) as? String
        #expect(outcome == "closed 1000", "the page's WebSocket ended with \(outcome ?? "nothing")")
        #expect(receiver.wait(seconds: 10) { $0.contains(where: \.isLegEnd) })
        let start = try #require(receiver.events.first { $0.legStart?.stream?.kind == "twilio" })
        #expect(start.leg?.callID == "browser-call" && start.legStart?.stream?.id == "MZbrowser")
        let legID = try #require(start.legID)
        let end = try #require(receiver.events.first { $0.legID == legID && $0.isLegEnd }?.legEnd)
        #expect(end.reason == "stop" && end.rtp.malformed == 0)
        #expect(abs(end.summary.mediaSeconds - Double(chunks.count) * 0.02) < 0.1)
        #expect(receiver.events.filter { $0.legID == legID && $0.isEmotion }.count >= 6)
    }
}
