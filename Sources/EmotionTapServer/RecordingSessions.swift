import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionSIP
import Foundation
import Logging
import Metrics
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// The SIPREC recording server's sessions: one leg per recorded audio stream, roles from the recording
/// metadata, the legs' lives tied to the SIP dialog. Called by the SIP stack's thread; read by the API.
public final class RecordingSessions: SIPUserAgentDelegate, @unchecked Sendable {
    // `sessions` and `dialogOfLeg` are guarded by `lock`; `agent` is set once before the stack starts.
    public struct Stream: Sendable {
        public var index: Int
        public var label: String?
        public var participant: String?
        public var role: String
        public var legID: String?
        public var port: Int?
        /// The SRTP key the leg decrypts with (a re-INVITE with another key needs another leg).
        public var srtp: SDESCrypto?
    }

    public struct Session: Sendable {
        public var id: String
        public var callID: String
        public var sipCallID: String
        public var created: Date
        public var streams: [Stream]
        fileprivate var dialog: SIPDialog
        fileprivate var sdpSessionID: UInt64
        fileprivate var sdpVersion: UInt64
        fileprivate var metadata: RecordingMetadata?
        fileprivate var lastAnswer: String?
    }

    let manager: LegManager
    let config: SIPConfig
    private let logger: Logger
    private let lock = NSLock()
    private var sessions: [SIPDialog: Session] = [:]
    private var dialogOfLeg: [String: SIPDialog] = [:]
    weak var agent: SIPUserAgent?
    private let started: Counter
    private let active: Gauge
    private let factory: any MetricsFactory

    init(manager: LegManager, config: SIPConfig, logger: Logger, metrics: any MetricsFactory) {
        self.manager = manager
        self.config = config
        self.logger = logger
        factory = metrics
        started = Counter(label: "emotiontap_sip_sessions_total", factory: metrics)
        active = Gauge(label: "emotiontap_sip_sessions_active", factory: metrics)
        manager.onLegEnded { [weak self] identity in self?.legEnded(identity) }
    }

    public func snapshots() -> [Session] { lock.withLock { Array(sessions.values) }.sorted { $0.created < $1.created } }

    // MARK: SIPUserAgentDelegate (the stack's thread)

    public func invite(_ invite: SIPInvite) -> SIPAnswer {
        let answer = invite.isReinvite ? reinvite(invite) : newSession(invite)
        if answer.status >= 300 {
            Counter(
                label: "emotiontap_sip_errors_total", dimensions: [("status", "\(answer.status)")], factory: factory
            )
            .increment()
        }
        return answer
    }

    public func ended(_ dialog: SIPDialog, reason: String) {
        guard
            let session = lock.withLock({ () -> Session? in
                let s = sessions.removeValue(forKey: dialog)
                for stream in s?.streams ?? [] { if let id = stream.legID { dialogOfLeg[id] = nil } }
                active.record(sessions.count)
                return s
            })
        else { return }
        for stream in session.streams {
            if let id = stream.legID { _ = try? manager.end(legID: id, reason: reason) }
        }
        logger.info("recording session ended", metadata: ["sip.session": "\(session.id)", "reason": "\(reason)"])
    }

    // MARK: Sessions

    private func newSession(_ invite: SIPInvite) -> SIPAnswer {
        let offer: RecordingOffer
        do { offer = try RecordingOffer.parse(contentType: invite.contentType, body: invite.body) } catch {
            return SIPAnswer(status: error.status, reason: error.reason)
        }
        let usable = offer.streams.filter { $0.rejection == nil }
        guard !usable.isEmpty else {
            // The reason an audio line was refused says more than "not audio" for the video beside it.
            let audio = offer.streams.filter { $0.media.lowercased() == "audio" }
            let why = audio.compactMap(\.rejection).first ?? "no audio stream"
            return SIPAnswer(status: 488, reason: "Not Acceptable Here (\(why))")
        }
        guard usable.count <= config.maxStreams else {
            return SIPAnswer(status: 503, reason: "Service Unavailable (over \(config.maxStreams) streams)")
        }
        let id = "rs-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let source = config.callIDSource == .sessionID ? (offer.metadata?.sessionID ?? invite.callID) : invite.callID
        let callID = Self.identifier(source)
        var session = Session(
            id: String(id), callID: callID, sipCallID: invite.callID, created: Date(), streams: [],
            dialog: invite.dialog, sdpSessionID: UInt64.random(in: 1...UInt64(Int64.max)), sdpVersion: 1,
            metadata: offer.metadata)
        var ports: [Int?] = []
        for s in offer.streams {
            guard s.rejection == nil else { ports.append(nil); continue }
            do {
                let stream = try openStream(s, session: session.id, callID: callID, metadata: offer.metadata)
                session.streams.append(stream)
                ports.append(stream.port)
            } catch {
                for opened in session.streams { _ = try? manager.end(legID: opened.legID!, reason: "setup_failed") }
                return SIPAnswer(status: 503, reason: "Service Unavailable (\(error))")
            }
        }
        let answer = SDPAnswer.make(
            offer: offer, ports: ports, host: config.advertisedMediaAddress(rtpHost: manager.config.rtpHost),
            sessionID: session.sdpSessionID,
            version: session.sdpVersion)
        session.lastAnswer = answer
        lock.withLock {
            sessions[invite.dialog] = session
            for s in session.streams { if let leg = s.legID { dialogOfLeg[leg] = invite.dialog } }
            active.record(sessions.count)
        }
        started.increment()
        logger.info(
            "recording session started",
            metadata: [
                "sip.session": "\(session.id)", "sip.call_id": "\(invite.callID)", "call.id": "\(callID)",
                "streams": "\(session.streams.count)",
            ])
        return SIPAnswer(status: 200, reason: "OK", sdp: answer)
    }

    /// A re-INVITE: streams matched by label (by position when unlabelled) keep their legs and state; new
    /// ones get legs; streams gone or disabled end theirs (reason `removed`).
    private func reinvite(_ invite: SIPInvite) -> SIPAnswer {
        guard var session = lock.withLock({ sessions[invite.dialog] }) else {
            return SIPAnswer(status: 481, reason: "Call/Transaction Does Not Exist")
        }
        // A re-INVITE without SDP (a session-timer refresh asking for an offer): offer what we answered
        // last; the ACK's answer is taken as unchanged.
        if invite.body.isEmpty, let last = session.lastAnswer {
            return SIPAnswer(status: 200, reason: "OK", sdp: last)
        }
        let offer: RecordingOffer
        do { offer = try RecordingOffer.parse(contentType: invite.contentType, body: invite.body) } catch {
            return SIPAnswer(status: error.status, reason: error.reason)
        }
        guard offer.streams.filter({ $0.rejection == nil }).count <= config.maxStreams else {
            return SIPAnswer(status: 503, reason: "Service Unavailable (over \(config.maxStreams) streams)")
        }
        func key(_ label: String?, _ index: Int) -> String { label.map { "l:\($0)" } ?? "i:\(index)" }
        // SRCs often send metadata only when it changes: the session's last one stands until then.
        let metadata = offer.metadata ?? session.metadata
        // Phase 1: decide and open the new legs; nothing ends yet, so a failure leaves the session as it was.
        var kept: [Stream] = [], opened: [String] = [], ending: [(leg: String, reason: String)] = []
        var ports: [Int?] = []
        var old = Dictionary(session.streams.map { (key($0.label, $0.index), $0) }, uniquingKeysWith: { a, _ in a })
        for s in offer.streams {
            guard s.rejection == nil else { ports.append(nil); continue }
            let k = key(s.label, s.index)
            let sender = metadata?.sender(ofLabel: s.label ?? "")?.aor
            if var existing = old[k], let leg = existing.legID, manager.snapshot(legID: leg) != nil,
                sender == nil || existing.participant == nil || sender == existing.participant,
                Self.sameKey(existing.srtp, s.srtp)
            {
                // Hold, a new SSRC, a codec switch: the same speaker, so the leg and its state go on.
                old[k] = nil
                if let sender { existing.participant = sender }
                existing.index = s.index
                manager.setMediaPaused(legID: leg, !s.sending)
                manager.update(legID: leg, payloadTypes: payloadTypes(for: s))
                kept.append(existing)
                ports.append(existing.port)
                continue
            }
            // A new stream, another participant on the label (a transfer: the old leg's baseline and state
            // are someone else's) or a new SRTP key (a leg's key is fixed): a fresh leg; the old one ends.
            if let replaced = old.removeValue(forKey: k), let leg = replaced.legID {
                ending.append((leg, Self.sameKey(replaced.srtp, s.srtp) ? "participant_changed" : "rekeyed"))
            }
            do {
                let stream = try openStream(s, session: session.id, callID: session.callID, metadata: metadata)
                opened.append(stream.legID!)
                kept.append(stream)
                ports.append(stream.port)
            } catch {
                for leg in opened { _ = try? manager.end(legID: leg, reason: "setup_failed") }
                return SIPAnswer(status: 503, reason: "Service Unavailable (\(error))")
            }
        }
        for gone in old.values { if let leg = gone.legID { ending.append((leg, "removed")) } }
        // Phase 2: commit under the lock (a kept leg that ended meanwhile is dropped), then end the rest:
        // their entries are gone first, so their ends never look like the session's media stopping.
        session.streams = kept
        session.metadata = metadata
        session.sdpVersion += 1
        let answer = SDPAnswer.make(
            offer: offer, ports: ports, host: config.advertisedMediaAddress(rtpHost: manager.config.rtpHost),
            sessionID: session.sdpSessionID,
            version: session.sdpVersion)
        session.lastAnswer = answer
        lock.withLock {
            for e in ending { dialogOfLeg[e.leg] = nil }
            for i in session.streams.indices {
                guard let leg = session.streams[i].legID else { continue }
                if opened.contains(leg) {
                    dialogOfLeg[leg] = invite.dialog
                } else if dialogOfLeg[leg] != invite.dialog {
                    session.streams[i].legID = nil
                }
            }
            sessions[invite.dialog] = session
        }
        for e in ending { _ = try? manager.end(legID: e.leg, reason: e.reason) }
        return SIPAnswer(status: 200, reason: "OK", sdp: answer)
    }

    private func openStream(
        _ s: OfferedStream, session: String, callID: String, metadata: RecordingMetadata?
    ) throws(LegRequestError) -> Stream {
        let participant = s.label.flatMap { metadata?.sender(ofLabel: $0) }
        let role = participant.map { self.role(of: $0.aor) } ?? "unknown"
        let leg = try manager.create(
            callID: callID, role: role, payloadTypes: payloadTypes(for: s), port: nil,
            recording: RecordedStream(session: session, label: s.label, participant: participant?.aor), srtp: s.srtp,
            agentID: agentID(in: metadata))
        // A stream offered inactive (a paused recording) sends nothing yet: no media timeout for it.
        if !s.sending { manager.setMediaPaused(legID: leg.identity.legID, true) }
        return Stream(
            index: s.index, label: s.label, participant: participant?.aor, role: role, legID: leg.identity.legID,
            port: leg.port, srtp: s.srtp)
    }

    /// What a stream's payload types mean, from its offer.
    private func payloadTypes(for s: OfferedStream) -> PayloadTypes {
        PayloadTypes(
            dynamicCodecs: s.dynamicCodecs,
            telephoneEventPayloadType: s.telephoneEvent ?? manager.config.telephoneEventPayloadType)
    }

    /// The same SRTP key (the SDES tag may differ between offers).
    static func sameKey(_ a: SDESCrypto?, _ b: SDESCrypto?) -> Bool {
        a?.suite == b?.suite && a?.keySalt == b?.keySalt
    }

    /// The agent when the AOR matches a configured pattern, else the customer.
    /// The session's agent for reports, on every one of its legs: the first participant whose AOR
    /// matches `sip.agent_aors`, without its scheme (nil when none does, or it is no usable id).
    func agentID(in metadata: RecordingMetadata?) -> String? {
        guard let aor = metadata?.participants.lazy.compactMap(\.aor).first(where: { role(of: $0) == "agent" })
        else { return nil }
        let id = Self.withoutScheme(aor)
        return LegRequest.validIdentifier(id) ? id : nil
    }

    func role(of aor: String?) -> String {
        guard let aor else { return "customer" }
        let bare = Self.withoutScheme(aor)
        return config.agentAORs.contains { fnmatch(Self.withoutScheme($0), bare, 0) == 0 } ? "agent" : "customer"
    }

    /// An AOR or pattern compared case-insensitively and without its "sip:", "sips:" or "tel:".
    static func withoutScheme(_ s: String) -> String {
        let lower = s.lowercased()
        for scheme in ["sips:", "sip:", "tel:"] where lower.hasPrefix(scheme) {
            return String(lower.dropFirst(scheme.count))
        }
        return lower
    }

    /// A SIP Call-ID or session id as a leg's call id: characters the API allows, at most 128.
    static func identifier(_ s: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@+-")
        let cleaned = String(s.map { allowed.contains($0) ? $0 : "-" }.prefix(128))
        return cleaned.isEmpty ? "siprec" : cleaned
    }

    /// A stream's RTP stopped (or its leg ended otherwise): when none of the session's legs is left,
    /// the recording session is over too, and the SRC is told with BYE.
    private func legEnded(_ identity: LegIdentity) {
        guard identity.recording != nil else { return }
        let orphan: SIPDialog? = lock.withLock {
            guard let dialog = dialogOfLeg.removeValue(forKey: identity.legID),
                var session = sessions[dialog]
            else { return nil }
            for i in session.streams.indices where session.streams[i].legID == identity.legID {
                session.streams[i].legID = nil
            }
            sessions[dialog] = session
            return session.streams.allSatisfy { $0.legID == nil } ? dialog : nil
        }
        if let orphan {
            logger.info("recording session's media stopped: hanging up", metadata: ["sip.dialog": "\(orphan)"])
            agent?.hangUp(orphan)
        }
    }
}

/// Runs the SIP stack for the service's lifetime; on graceful shutdown every session gets BYE.
public struct SIPService: Service {
    let agent: SIPUserAgent
    let logger: Logger

    public func run() async throws {
        do { try agent.start() } catch {
            logger.error("SIP not started", metadata: ["error": "\(error)"])
            throw ServiceError(error.description)
        }
        logger.info(
            "SIPREC recording server listening",
            metadata: ["sip": "\(agent.options.url)", "sips": "\(agent.options.tlsURL ?? "off")"])
        try? await gracefulShutdown()
        agent.stop()
    }
}
