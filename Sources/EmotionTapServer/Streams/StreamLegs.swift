import EmotionCore
import EmotionMedia
import EmotionProtocol
import EmotionStreams
import Foundation

/// The legs of one stream connection (one per channel: a stereo stream is the customer and the agent),
/// fed through their inboxes. The connection calls it from one task or event loop at a time.
final class StreamLegs: @unchecked Sendable {
    struct Leg {
        let id: String
        let role: String
        let inbox: StreamInbox
    }

    let manager: LegManager
    private(set) var legs: [Leg] = []
    private var splitter: StreamAudioSplitter
    private var ended = false

    /// Makes a leg per role (`roles.count` must equal `format.channels`); undoes the ones made when one
    /// fails.
    init(
        manager: LegManager, format: StreamAudioFormat, callID: String, roles: [String], origin: StreamOrigin,
        listenerPort: Int, source: SourceAddress, agentID: String?, tags: [String: String],
        exclusive: Bool = false, eventSink: (@Sendable (Event.Body, String) -> Void)? = nil
    ) throws(LegRequestError) {
        self.manager = manager
        precondition(roles.count == format.channels)
        do { splitter = try StreamAudioSplitter(format: format) } catch {
            throw .invalid("\(origin.kind): \(error)")
        }
        for role in roles {
            do {
                let (snapshot, inbox) = try manager.createStream(
                    callID: callID, role: role, codec: format.legCodec, origin: origin, listenerPort: listenerPort,
                    source: source, agentID: agentID, tags: tags, exclusive: exclusive, eventSink: eventSink)
                legs.append(Leg(id: snapshot.identity.legID, role: role, inbox: inbox))
            } catch {
                end(reason: "setup_failed")
                throw error
            }
        }
    }

    /// An AudioSocket leg the API made before the call connected.
    init(
        manager: LegManager, claimed legID: String, role: String, inbox: StreamInbox, format: StreamAudioFormat
    )
        throws(LegRequestError)
    {
        self.manager = manager
        do { splitter = try StreamAudioSplitter(format: format) } catch { throw .invalid("\(error)") }
        legs = [Leg(id: legID, role: role, inbox: inbox)]
    }

    var format: StreamAudioFormat { splitter.format }

    /// A new format mid-stream (AudioSocket's kind moved to another rate): a new splitter, same legs.
    func change(format: StreamAudioFormat) throws(LegRequestError) {
        guard format != splitter.format else { return }
        do { splitter = try StreamAudioSplitter(format: format) } catch { throw .invalid("\(error)") }
    }

    /// One frame of audio; false (and counted as malformed on the legs) when it is not whole samples.
    @discardableResult
    func push(_ payload: UnsafeRawBufferPointer, arrival: Double = Date().timeIntervalSince1970) -> Bool {
        guard !ended else { return false }
        let legs = self.legs
        let ok = splitter.split(payload) { channel, bytes, samples in
            guard channel < legs.count else { return }
            let inbox = legs[channel].inbox
            inbox.push(
                bytes, payloadType: StreamInbox.payloadType(of: splitter.format.legCodec), samples: samples,
                arrival: arrival)
        }
        if !ok { countMalformed() }
        return ok
    }

    /// A frame or message of the stream's protocol that could not be used.
    func countMalformed() {
        for leg in legs { leg.inbox.countMalformed() }
    }

    func setPaused(_ paused: Bool) {
        for leg in legs { manager.setMediaPaused(legID: leg.id, paused) }
    }

    /// Ends every leg (`leg.end` with `reason`) once; the worker drains what was pushed first.
    func end(reason: String) {
        guard !ended else { return }
        ended = true
        for leg in legs { _ = try? manager.end(legID: leg.id, reason: reason) }
    }
}
