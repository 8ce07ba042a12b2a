import EmotionCore

/// One leg's media path on plain packet values: source policy, payload-type classification, codec
/// switch, RFC 3550 statistics, playout (gaps concealed or filled with silence), decode, analysis,
/// decisions. It knows no sockets and no RTP library: every source of packets feeds it the same way.
///
/// Plain state owned by one thread. Buffers are allocated once; the per-packet path does no
/// allocation (a window, once a second, allocates its vector).
public final class LegPipeline {
    public let identity: LegIdentity
    public private(set) var payloadTypes: PayloadTypes
    public let sourcePolicy: SourcePolicy
    public private(set) var codec: VoiceCodec?
    public private(set) var payloadType: UInt8?
    public private(set) var statistics = ReceptionStatistics(clockRate: 8000)
    public private(set) var counters = LegCounters()
    public private(set) var decisions: LegDecisions
    public private(set) var lastScores: EmotionScores?
    private var lockedSource: (UInt32, UInt16)?

    private let analyzer: StreamingAnalyzer
    private let runner: ModelRunner
    private var decoder: (any PayloadDecoder)?
    private var expectedTimestamp: UInt32 = 0
    private var timestampsPerSample: UInt32 = 1
    /// A packet's decoded samples and their float copy for the analysis: the worker thread's, not the
    /// leg's (used only while this leg handles a packet; 48 kB a leg held for nothing otherwise).
    /// 120 ms of Opus at 8 kHz is the longest packet; concealment is done in slices of this size.
    private var pcm: UnsafeMutableBufferPointer<Int16> {
        ThreadScratch.buffer(Int16.self, Self.sampleRate, for: .decodedSamples)
    }
    private var floats: UnsafeMutableBufferPointer<Float> {
        ThreadScratch.buffer(Float.self, Self.sampleRate, for: .analysisSamples)
    }
    private let emit: (LegOutput) -> Void
    private var started = false
    private var latestArrival = 0.0

    /// Largest gap filled by concealment; a longer one is a discontinuity (hold, re-INVITE) and resynchronises.
    public static let maxConcealSeconds = 1.0
    /// Longest silence inserted for a sender that stopped sending during silence (DTX, comfort noise).
    public static let maxSilenceSeconds = 5.0
    /// The analysis rate every codec decodes to.
    static let sampleRate = 8000

    public init(
        identity: LegIdentity, payloadTypes: PayloadTypes = PayloadTypes(), sourcePolicy: SourcePolicy = SourcePolicy(),
        model: EmotionModel, policy: LegPolicy, emit: @escaping (LegOutput) -> Void
    ) throws {
        self.identity = identity
        self.payloadTypes = payloadTypes
        self.sourcePolicy = sourcePolicy
        runner = ModelRunner(model: model)
        analyzer = try StreamingAnalyzer(for: model, feeding: runner)
        samplesUntilNextWindow = analyzer.samplesUntilNextWindow
        decisions = LegDecisions(policy: policy, role: identity.role)
        self.emit = emit
    }

    public var requestedCodec: VoiceCodec? { payloadTypes.requestedCodec }

    /// A re-INVITE moved the leg's payload types (e.g. Opus from 96 to 97): the next packet on a type
    /// that now means another codec switches the decoder as any codec change does; the state goes on.
    public func update(payloadTypes: PayloadTypes) {
        self.payloadTypes = payloadTypes
    }
    /// Media seconds so far: analysed, and skipped as read too late (`shed`), so that event times
    /// stay on the leg's own timeline after a backlog.
    public var mediaSeconds: Double { analyzer.elapsed + shedSeconds }
    private var shedSeconds: Double { Double(shedSamples) / Double(Self.sampleRate) }
    public var mood: LegMood { decisions.mood }
    /// Media seconds still to come before the next window's verdict: when a reader should look again
    /// promptly, so that the verdict is not held back by a coarse read interval.
    public var secondsUntilNextWindow: Double {
        Double(samplesUntilNextWindow) / Double(Self.sampleRate)
    }
    /// The analyser's count, kept after each push while its state is in cache: the worker asks after
    /// every read, and asking the analyser then cost a cache miss (1 % of the service at 2,000 legs).
    private var samplesUntilNextWindow: Int

    // MARK: Packets

    public func handle(_ packet: RTPPacket) {
        guard let (decoder, disposition) = receive(packet) else { return }
        if !started {
            started = true
            expectedTimestamp = packet.timestamp
            emit(
                .started(codec: codec!, payloadType: packet.payloadType, ssrc: packet.ssrc, source: packet.source.text))
        }
        guard playOut(disposition, before: packet) else { return }
        let n: Int
        do {
            n = try decoder.decode(packet.payload, into: pcm)
        } catch {
            counters.undecodable += 1
            return
        }
        expectedTimestamp = packet.timestamp &+ UInt32(n) &* timestampsPerSample
        analyse(count: n)
    }

    /// A packet read too late to be worth analysing (the worker fell behind): counted as
    /// `queue_overflow` and in the reception statistics (it did arrive), its audio skipped without
    /// decoding, and the playout moved past it so that the next packet is not concealed over it.
    /// Returns the samples skipped (what the windows it would have made are counted from).
    @discardableResult
    public func shed(_ packet: RTPPacket) -> Int {
        guard let (decoder, disposition) = receive(packet) else { return 0 }
        counters.queueOverflow += 1
        switch disposition {
        case .duplicate, .reordered: return 0
        case .inOrder, .newSource: break
        }
        let n = decoder.sampleCount(of: packet.payload) ?? 0
        if started { expectedTimestamp = packet.timestamp &+ UInt32(n) &* timestampsPerSample }
        shedSamples &+= UInt64(n)
        return n
    }

    /// What every packet goes through, played or shed: counted, admitted by the source policy, given its
    /// decoder (nil, counted by reason, when it carries no audio this leg plays), recorded in the
    /// reception statistics, and the leg locked to its first sender.
    @inline(__always)
    private func receive(_ packet: RTPPacket) -> ((any PayloadDecoder), ReceptionStatistics.Disposition)? {
        counters.packets += 1
        guard admits(packet.source) else { return nil }
        guard let decoder = decoder(for: packet) else { return nil }
        let disposition = statistics.record(
            sequence: packet.sequenceNumber, timestamp: packet.timestamp,
            ssrc: packet.ssrc, arrival: packet.arrival)
        if case .inOrder = disposition, packet.arrival < latestArrival { statistics.countReorderedArrival() }
        latestArrival = max(latestArrival, packet.arrival)
        if lockedSource == nil { lockedSource = (packet.source.ipv4, packet.source.port) }
        return (decoder, disposition)
    }

    /// Audio skipped unanalysed because it was read too late (`shed`), in samples at the analysis rate.
    public private(set) var shedSamples: UInt64 = 0

    /// The source policy: an allow-list, and a lock to the first sender.
    @inline(__always)
    private func admits(_ source: SourceAddress) -> Bool {
        guard sourcePolicy.allows(source.ipv4) else {
            counters.sourceNotAllowed += 1
            return false
        }
        if sourcePolicy.lockToFirstSource, let (ip, port) = lockedSource, ip != source.ipv4 || port != source.port {
            counters.wrongSource += 1
            return false
        }
        return true
    }

    /// The decoder for the packet's payload type (switching codec when it changed), or nil when the
    /// packet carries no audio this leg plays; every such packet is counted by its reason.
    @inline(__always)
    private func decoder(for packet: RTPPacket) -> (any PayloadDecoder)? {
        let pt = packet.payloadType
        switch payloadTypes.kind(of: pt) {
        case .comfortNoise:
            counters.comfortNoise += 1
            return nil
        case .telephoneEvent:
            counters.telephoneEvents += 1
            return nil
        case .unknown:
            counters.unknownPayloadType += 1
            return nil
        case .audio(let kind):
            if codec != kind || payloadType != pt {
                guard (try? switchCodec(kind, payloadType: pt)) != nil else {
                    counters.undecodable += 1
                    return nil
                }
            }
            guard let decoder, decoder.sampleCount(of: packet.payload) != nil else {
                counters.undecodable += 1
                return nil
            }
            return decoder
        }
    }

    /// Plays what comes before the packet (concealment for lost packets, silence for a sender that
    /// paused); false when the packet itself is not to be played.
    private func playOut(_ disposition: ReceptionStatistics.Disposition, before packet: RTPPacket) -> Bool {
        switch disposition {
        case .duplicate:
            return false
        case .reordered:
            // Already played past it: too late for this playout.
            counters.late += 1
            return false
        case .newSource:
            counters.resyncs += 1
            expectedTimestamp = packet.timestamp
        case .inOrder(let gap):
            let missing = Int(Int32(bitPattern: packet.timestamp &- expectedTimestamp)) / Int(timestampsPerSample)
            let rate = Double(Self.sampleRate)
            if missing < 0 || Double(missing) > Self.maxSilenceSeconds * rate {
                // A timestamp jump: resynchronise rather than invent audio.
                counters.resyncs += 1
            } else if missing > 0 {
                if gap > 0, Double(missing) <= Self.maxConcealSeconds * rate {
                    conceal(missing, next: packet.payload)
                    counters.concealedMilliseconds += UInt64(missing * 1000 / Self.sampleRate)
                } else {
                    // Sequence numbers are contiguous: the sender paused (DTX), so the gap is silence.
                    insertSilence(missing)
                    counters.silenceInsertedMilliseconds += UInt64(missing * 1000 / Self.sampleRate)
                }
            }
        }
        return true
    }

    private func switchCodec(_ kind: VoiceCodec, payloadType pt: UInt8) throws {
        if codec != nil { counters.resyncs += 1 }
        decoder = try kind.makeDecoder(sampleRate: Self.sampleRate)
        codec = kind
        payloadType = pt
        timestampsPerSample = UInt32(kind.rtpClockRate / Self.sampleRate)
        statistics = ReceptionStatistics(clockRate: kind.rtpClockRate)
        started = false
    }

    private func conceal(_ count: Int, next: UnsafeRawBufferPointer) {
        guard let decoder else { return }
        var remaining = count
        // Opus: all but the last frame from concealment, the last from the FEC data in `next`.
        let fecSlice = codec == .opus ? min(remaining, 160) : 0
        while remaining > fecSlice {
            let n = decoder.conceal(min(remaining - fecSlice, pcm.count), into: pcm)
            if n <= 0 { break }
            analyse(count: n)
            remaining -= n
        }
        if remaining > 0 {
            let n =
                codec == .opus
                ? decoder.recover(remaining, from: next, into: pcm) : decoder.conceal(remaining, into: pcm)
            if n > 0 { analyse(count: min(n, remaining)) }
        }
    }

    private func insertSilence(_ count: Int) {
        var remaining = count
        while remaining > 0 {
            let n = min(remaining, pcm.count)
            pcm.update(repeating: 0)
            analyse(count: n)
            remaining -= n
        }
    }

    // MARK: Analysis

    private func analyse(count: Int) {
        PCM.toFloat(UnsafeBufferPointer(rebasing: pcm[0..<count]), into: floats)
        analyzer.push(UnsafeBufferPointer(rebasing: floats[0..<count])) { window in self.decide(window) }
        samplesUntilNextWindow = analyzer.samplesUntilNextWindow
    }

    private func decide(_ window: WindowFeatures) {
        let scores = runner.predict(window: window)
        if let scores { lastScores = scores }
        let outputs = decisions.add(window: window, scores: scores)
        if shedSamples > 0 {
            var shown = window
            shown.start += shedSeconds
            shown.end += shedSeconds
            emit(.window(shown, scores, mood: decisions.mood))
        } else {
            emit(.window(window, scores, mood: decisions.mood))
        }
        for output in outputs {
            switch output {
            case .stateChanged(let from, let to): emit(.stateChanged(from: from, to: to))
            case .escalate(let seconds): emit(.escalate(upsetSeconds: seconds))
            }
        }
    }

    /// Flushes the last window (if one is due) at leg end.
    public func finish() {
        analyzer.finish { window in self.decide(window) }
    }
}
