import EmotionCore
import EmotionMedia
import Foundation
import Glibc

extension LoadGenerator {
    /// `loadgen --stream twilio`: each leg is a WebSocket connection to `/v1/stream/twilio` (Twilio Media
    /// Streams: `start`, then a `media` message of base64 mu-law every 20 ms, then `stop`), paced from one
    /// thread like the RTP path. The frames are built and masked once and sent to every connection.
    func runStreams(progress: (String) -> Void) async throws(TrafficError) -> [String] {
        guard options.stream == "twilio" else { throw TrafficError("--stream: only twilio is supported") }
        guard options.codec == .pcmu else { throw TrafficError("--stream twilio carries mu-law: --codec pcmu") }
        guard let url = URL(string: options.apiURL), let host = url.host, let port = url.port else {
            throw TrafficError("--via-api must be http://HOST:PORT for --stream")
        }
        let frames = try PayloadFrames(audio, codec: .pcmu, padLastFrame: false)
        let mask: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]
        let media = frames.payloads.map { payload in
            WebSocketClient.frame(
                .text,
                Array(
                    #"{"event":"media","media":{"track":"inbound","payload":"\#(Data(payload).base64EncodedString())"}}"#
                        .utf8), mask: mask)
        }
        let path = "/v1/stream/twilio" + (options.token.map { "?token=\($0)" } ?? "")
        // Before the streams (and so their legs) exist, as for RTP legs: the memory they take per leg.
        let rssBefore = options.reportPID.map { ProcessSample.read($0).rssKB } ?? 0
        var clients: [WebSocketClient] = []
        let connectStart = Date()
        for i in 0..<options.legs {
            do {
                let ws = try WebSocketClient(port: port, path: path, host: host, handshakeTimeout: 10)
                try ws.send(
                    text:
                        #"{"event":"start","sequenceNumber":"1","start":{"streamSid":"loadgen-\#(i)","callSid":"loadgen-call-\#(i / 2)","tracks":["inbound"],"customParameters":{"role_inbound":"\#(i % 2 == 0 ? "customer" : "agent")"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#
                )
                clients.append(ws)
            } catch {
                progress("loadgen: stream \(i) \(error)")
                break
            }
        }
        progress(
            String(
                format: "loadgen: %d twilio streams opened in %.1f s", clients.count,
                Date().timeIntervalSince(connectStart)))
        let listener = try options.listen.map { address throws(TrafficError) in
            try EventListener(address: address, legIDs: [], learnsStreamLegs: true) { leg, legs in
                Double(Self.startOffsetMilliseconds(leg: leg, of: legs)) / 1000
            }
        }
        let before = options.reportPID.map { ProcessSample.read($0) }
        let generatorBefore = ProcessSample.read(getpid())
        var stats = StreamStats()
        let n = clients.count
        let startTick = (0..<n).map { Self.startOffsetMilliseconds(leg: $0, of: n) }
        var legsByPhase = [[Int]](repeating: [], count: 20)
        for leg in 0..<n { legsByPhase[startTick[leg] % 20].append(leg) }
        var frame = [Int](repeating: 0, count: n)
        var lags: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        listener?.setStart(Double(start) / 1e9, legs: n)
        // Resident memory with every stream live, late in the run: at the end the service may already be
        // giving back memory (a leg that ends lets the worker trim malloc's free memory), which made the
        // figure read anywhere from 26 to 213 kB per leg from one run to the next.
        let rssTick = Int(options.duration * 900)
        var rssDuring: Int?
        for tick in 0..<(Int(options.duration * 1000) + 1000) {
            if tick == rssTick, let pid = options.reportPID { rssDuring = ProcessSample.read(pid).rssKB }
            let due = start + UInt64(tick) * 1_000_000
            let now = DispatchTime.now().uptimeNanoseconds
            if due > now { usleep(UInt32((due - now) / 1000)) } else { lags.append(Double(now - due) / 1e9) }
            for leg in legsByPhase[tick % 20] where tick >= startTick[leg] {
                if (try? clients[leg].send(prepared: media[frame[leg] % media.count])) != nil { stats.sent += 1 }
                frame[leg] += 1
            }
        }
        stats.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        lags.sort()
        stats.lagP99 = lags.isEmpty ? 0 : lags[min(lags.count - 1, Int(Double(lags.count) * 0.99))]
        listener?.freeze()
        let after = options.reportPID.map { ProcessSample.read($0) }
        let generatorAfter = ProcessSample.read(getpid())
        for ws in clients { try? ws.send(text: #"{"event":"stop","sequenceNumber":"2","stop":{}}"#) }
        try? await Task.sleep(for: .milliseconds(2500))
        listener?.stop()
        return report(
            legs: n, stats: stats, listener: listener, before: before, after: after,
            generatorSeconds: generatorAfter.cpuSeconds - generatorBefore.cpuSeconds, drops: 0, rssBefore: rssBefore,
            rssDuring: rssDuring)
    }
}
