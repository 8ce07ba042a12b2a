import EmotionCore

/// Who a leg is.
public struct LegIdentity: Sendable, Equatable {
    public var callID: String
    public var legID: String
    public var role: String
    public init(callID: String, legID: String, role: String) {
        self.callID = callID
        self.legID = legID
        self.role = role
    }
}

/// What a leg's media produces, in order.
public enum LegOutput: Sendable {
    /// The first audio packet: codec, payload type, SSRC and the sender's address.
    case started(codec: VoiceCodec, payloadType: UInt8, ssrc: UInt32, source: String?)
    /// One analysis window; `scores` is nil for a window without enough speech.
    case window(WindowFeatures, EmotionScores?, mood: LegMood)
    case stateChanged(from: LegMood, to: LegMood)
    case escalate(upsetSeconds: Double)
}

/// Which senders a leg accepts: an allow-list of IPv4 networks (empty = any), and whether the leg
/// locks to the first sender so a stray source cannot take it over.
public struct SourcePolicy: Sendable, Equatable {
    public var allowed: [IPv4Network]
    public var lockToFirstSource: Bool

    public init(allowed: [IPv4Network] = [], lockToFirstSource: Bool = true) {
        self.allowed = allowed
        self.lockToFirstSource = lockToFirstSource
    }

    @inline(__always)
    func allows(_ address: UInt32) -> Bool {
        allowed.isEmpty || allowed.contains { $0.contains(address) }
    }
}

/// An IPv4 network in CIDR form, e.g. "10.1.0.0/16".
public struct IPv4Network: Sendable, Equatable, CustomStringConvertible {
    public let address: UInt32
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false).compactMap { UInt8($0) }
        guard octets.count == 4 else { return nil }
        let prefix = parts.count == 2 ? Int(parts[1]) : 32
        guard let prefix, (0...32).contains(prefix) else { return nil }
        let a = octets.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        self.prefix = prefix
        address = a & Self.mask(prefix)
    }

    static func mask(_ prefix: Int) -> UInt32 { prefix == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefix) }

    @inline(__always)
    public func contains(_ a: UInt32) -> Bool { a & Self.mask(prefix) == address }

    public var description: String {
        "\(address >> 24).\((address >> 16) & 0xff).\((address >> 8) & 0xff).\(address & 0xff)/\(prefix)"
    }
}

/// Counters beyond RFC 3550, per reason a packet was not played as it came.
public struct LegCounters: Sendable, Equatable {
    public var packets: UInt64 = 0
    public var comfortNoise: UInt64 = 0
    public var telephoneEvents: UInt64 = 0
    public var unknownPayloadType: UInt64 = 0
    public var undecodable: UInt64 = 0
    public var late: UInt64 = 0
    public var concealedMilliseconds: UInt64 = 0
    public var silenceInsertedMilliseconds: UInt64 = 0
    public var resyncs: UInt64 = 0
    /// Dropped because the sender is outside the allow-list.
    public var sourceNotAllowed: UInt64 = 0
    /// Dropped because the leg is locked to another sender.
    public var wrongSource: UInt64 = 0
    /// Datagrams dropped before decoding: not RTP (random bytes, version other than 2), shorter than
    /// their header says (fixed header, CSRC list, extension, padding), longer than the receive buffer,
    /// or from a second SSRC that has not (yet) taken over. Filled in by the receive session.
    public var malformed: UInt64 = 0
    /// Packets dropped because the receive queue was full (the leg fell seconds behind) or carried no
    /// payload at all. From oRTP's counters.
    public var queueOverflow: UInt64 = 0
    public init() {}
}

/// One leg's media path: RTP packets in playout order, decoded, gaps concealed, analysed, decided.
///
/// Plain state owned by one worker thread. Buffers are allocated once; the per-packet path does
/// no allocation (a window, once a second, allocates its vector).
public final class LegPipeline {
    public let identity: LegIdentity
    public let requestedCodec: VoiceCodec?
    public private(set) var codec: VoiceCodec?
    public private(set) var payloadType: UInt8?
    public private(set) var statistics = ReceptionStatistics(clockRate: 8000)
    public private(set) var counters = LegCounters()
    public private(set) var decisions: LegDecisions
    public private(set) var lastScores: EmotionScores?
    public let telephoneEventPayloadType: UInt8
    public let sourcePolicy: SourcePolicy
    private let opusPayloadType: UInt8?
    private var lockedSource: (UInt32, UInt16)?

    private let analyzer: StreamingAnalyzer
    private let runner: ModelRunner
    private var decoder: (any PayloadDecoder)?
    private var expectedTimestamp: UInt32 = 0
    private var timestampsPerSample: UInt32 = 1
    private var pcm: UnsafeMutableBufferPointer<Int16>
    private var floats: UnsafeMutableBufferPointer<Float>
    private let emit: (LegOutput) -> Void
    private var started = false
    private var latestArrival = 0.0

    /// Largest gap filled by concealment; a longer one is a discontinuity (hold, re-INVITE) and resynchronises.
    public static let maxConcealSeconds = 1.0
    /// Longest silence inserted for a sender that stopped sending during silence (DTX, comfort noise).
    public static let maxSilenceSeconds = 5.0

    public init(identity: LegIdentity, codec: VoiceCodec?, opusPayloadType: UInt8? = nil, telephoneEventPayloadType: UInt8 = 101,
                sourcePolicy: SourcePolicy = SourcePolicy(), model: EmotionModel, policy: LegPolicy,
                emit: @escaping (LegOutput) -> Void) throws {
        self.sourcePolicy = sourcePolicy
        self.identity = identity
        requestedCodec = codec
        self.opusPayloadType = opusPayloadType
        self.telephoneEventPayloadType = telephoneEventPayloadType
        analyzer = try StreamingAnalyzer(features: model.features, windows: model.windows)
        runner = ModelRunner(model: model)
        decisions = LegDecisions(policy: policy, role: identity.role)
        self.emit = emit
        // 120 ms of Opus at 8 kHz is the longest packet; concealment is done in slices of this size.
        pcm = .allocate(capacity: 8000)
        pcm.initialize(repeating: 0)
        floats = .allocate(capacity: 8000)
        floats.initialize(repeating: 0)
    }

    deinit {
        pcm.deallocate()
        floats.deallocate()
    }

    /// Media seconds analysed so far.
    public var mediaSeconds: Double { analyzer.elapsed }
    public var mood: LegMood { decisions.mood }

    // MARK: Packets

    public func handle(_ packet: RTPPacketView) {
        counters.packets += 1
        guard sourcePolicy.allows(packet.sourceIPv4) else { counters.sourceNotAllowed += 1; return }
        if sourcePolicy.lockToFirstSource, let (ip, port) = lockedSource, ip != packet.sourceIPv4 || port != packet.sourcePort {
            counters.wrongSource += 1
            return
        }
        let pt = packet.payloadType
        if pt == 13 || pt == 19 { counters.comfortNoise += 1; return }
        if pt == telephoneEventPayloadType { counters.telephoneEvents += 1; return }
        guard let kind = audioCodec(for: pt) else { counters.unknownPayloadType += 1; return }
        if codec != kind || payloadType != pt {
            guard (try? switchCodec(kind, payloadType: pt)) != nil else { counters.undecodable += 1; return }
        }
        guard let decoder else { return }
        guard decoder.sampleCount(of: packet.payload) != nil else { counters.undecodable += 1; return }

        let disposition = statistics.record(sequence: packet.sequenceNumber, timestamp: packet.timestamp,
                                            ssrc: packet.ssrc, arrival: packet.arrival)
        if case .inOrder = disposition, packet.arrival < latestArrival { statistics.countReorderedArrival() }
        latestArrival = max(latestArrival, packet.arrival)
        if lockedSource == nil { lockedSource = (packet.sourceIPv4, packet.sourcePort) }
        if !started {
            started = true
            expectedTimestamp = packet.timestamp
            emit(.started(codec: kind, payloadType: pt, ssrc: packet.ssrc, source: packet.source))
        }
        switch disposition {
        case .duplicate:
            return
        case .reordered:
            // Already played past it: too late for this playout.
            counters.late += 1
            return
        case .newSource:
            counters.resyncs += 1
            expectedTimestamp = packet.timestamp
        case .inOrder(let gap):
            let missing = Int(Int32(bitPattern: packet.timestamp &- expectedTimestamp)) / Int(timestampsPerSample)
            if missing < 0 || Double(missing) > Self.maxSilenceSeconds * 8000 {
                // A timestamp jump: resynchronise rather than invent audio.
                counters.resyncs += 1
            } else if missing > 0 {
                if gap > 0, Double(missing) <= Self.maxConcealSeconds * 8000 {
                    conceal(missing, next: packet.payload)
                    counters.concealedMilliseconds += UInt64(missing / 8)
                } else {
                    // Sequence numbers are contiguous: the sender paused (DTX), so the gap is silence.
                    insertSilence(missing)
                    counters.silenceInsertedMilliseconds += UInt64(missing / 8)
                }
            }
        }
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

    private func audioCodec(for pt: UInt8) -> VoiceCodec? {
        switch pt {
        case 0: return requestedCodec == nil || requestedCodec == .pcmu || requestedCodec == .pcma ? .pcmu : nil
        case 8: return requestedCodec == nil || requestedCodec == .pcmu || requestedCodec == .pcma ? .pcma : nil
        case 96...127:
            if let opusPayloadType { return pt == opusPayloadType ? .opus : nil }
            // A dynamic payload type means Opus unless the leg was declared G.711.
            return requestedCodec == nil || requestedCodec == .opus ? .opus : nil
        default: return nil
        }
    }

    private func switchCodec(_ kind: VoiceCodec, payloadType pt: UInt8) throws {
        if codec != nil { counters.resyncs += 1 }
        decoder = try kind.makeDecoder(sampleRate: 8000)
        codec = kind
        payloadType = pt
        // Opus's RTP clock is 48 kHz whatever it carries (RFC 7587).
        timestampsPerSample = kind == .opus ? 6 : 1
        statistics = ReceptionStatistics(clockRate: kind == .opus ? 48000 : 8000)
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
            let n = codec == .opus ? decoder.recover(remaining, from: next, into: pcm) : decoder.conceal(remaining, into: pcm)
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
        for i in 0..<count { floats[i] = Float(pcm[i]) / 32768 }
        analyzer.push(UnsafeBufferPointer(rebasing: floats[0..<count])) { window in self.decide(window) }
    }

    private func decide(_ window: WindowFeatures) {
        let scores = window.vector.map { runner.predict($0) }
        if let scores { lastScores = scores }
        let outputs = decisions.add(window: window, scores: scores)
        emit(.window(window, scores, mood: decisions.mood))
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
