internal import CSofiaSIP
import Foundation
import Logging
import Synchronization

/// One SIP dialog the stack holds (a nua handle), as the service names it.
public struct SIPDialog: Hashable, Sendable, CustomStringConvertible {
    let bits: UInt
    init(_ nh: OpaquePointer) { bits = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(nh))) }
    var handle: OpaquePointer { OpaquePointer(bitPattern: bits)! }
    public var description: String { "dialog-\(String(bits, radix: 16))" }
    /// A dialog that is not the stack's, for tests that drive the sessions without SIP.
    public init(testID: UInt) { bits = testID }
}

/// An incoming INVITE (first or re-INVITE) as the service sees it.
public struct SIPInvite: Sendable {
    public var dialog: SIPDialog
    public var isReinvite: Bool
    public var callID: String
    public var from: String?
    public var contentType: String?
    public var body: [UInt8]
    /// The Require header's option tags (e.g. "siprec").
    public var require: [String]

    public init(
        dialog: SIPDialog, isReinvite: Bool, callID: String, from: String? = nil, contentType: String?,
        body: [UInt8], require: [String] = []
    ) {
        self.dialog = dialog
        self.isReinvite = isReinvite
        self.callID = callID
        self.from = from
        self.contentType = contentType
        self.body = body
        self.require = require
    }
}

/// What to answer an INVITE with.
public struct SIPAnswer: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var sdp: String?

    public init(status: Int, reason: String, sdp: String? = nil) {
        self.status = status
        self.reason = reason
        self.sdp = sdp
    }
}

/// The service's side of the SIP stack. Called on the stack's own thread, one call at a time; a call
/// must return quickly (it may create legs, which binds sockets).
public protocol SIPUserAgentDelegate: AnyObject, Sendable {
    func invite(_ invite: SIPInvite) -> SIPAnswer
    /// The dialog is over (BYE, CANCEL, session timer, or our own hang-up): end its legs.
    func ended(_ dialog: SIPDialog, reason: String)
}

/// Sofia-SIP's user agent (nua) on a thread of its own: transactions, dialogs, session timers, OPTIONS
/// and retransmissions are the stack's; the service only answers INVITEs and hears when dialogs end.
public final class SIPUserAgent: @unchecked Sendable {
    // @unchecked: `root`, `nua` and `dialogs` are touched only on the stack's thread; `pending` under its
    // mutex; `state` is atomic.
    public struct Options: Sendable {
        /// "sip:127.0.0.1:5070" listens on UDP and TCP; ";transport=udp" limits it.
        public var url: String
        /// A "sips:" URL and a directory with agent.pem/cafile.pem for TLS, or nil.
        public var tlsURL: String?
        public var certificateDirectory: String?
        public var sessionExpires: UInt32 = 1800
        public var minSessionExpires: UInt32 = 90

        public init(url: String, tlsURL: String? = nil, certificateDirectory: String? = nil) {
            self.url = url
            self.tlsURL = tlsURL
            self.certificateDirectory = certificateDirectory
        }
    }

    public struct StartError: Error, CustomStringConvertible {
        public let description: String
    }

    public let options: Options
    private let logger: Logger
    private weak var delegate: (any SIPUserAgentDelegate)?
    private var root: OpaquePointer?
    private var nua: OpaquePointer?
    /// Dialogs the delegate has been told about and not yet told have ended.
    private var dialogs: Set<SIPDialog> = []
    private let pending = Mutex<[SIPDialog]>([])
    private let stopping = Atomic<Bool>(false)
    private var thread: Thread?
    private let started = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var startError: String?

    public init(options: Options, delegate: any SIPUserAgentDelegate, logger: Logger) {
        self.options = options
        self.delegate = delegate
        self.logger = logger
    }

    /// Binds the SIP ports and starts the stack's thread; throws when the address cannot be bound.
    public func start() throws(StartError) {
        let t = Thread { [self] in run() }
        t.name = "sip"
        thread = t
        t.start()
        started.wait()
        if let startError { throw StartError(description: startError) }
    }

    /// Ends every dialog with BYE, shuts the stack down and waits for its thread (at most a few seconds).
    public func stop() {
        guard thread != nil, !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = finished.wait(timeout: .now() + 5)
    }

    /// Sends BYE on a dialog (its legs' RTP stopped); thread-safe, done on the stack's next turn.
    public func hangUp(_ dialog: SIPDialog) {
        pending.withLock { $0.append(dialog) }
    }

    private func run() {
        su_init()
        et_sofia_log_level(0)
        root = su_root_create(nil)
        let magic = Unmanaged.passUnretained(self).toOpaque()
        nua = options.url.withCString { url in
            withOptionalCString(options.tlsURL) { tls in
                withOptionalCString(options.certificateDirectory) { dir in
                    et_nua_create(
                        root, SIPUserAgent.callback, magic, url, tls, dir,
                        options.sessionExpires, options.minSessionExpires)
                }
            }
        }
        guard nua != nil else {
            startError = "cannot listen for SIP on \(options.url) (address in use or not local)"
            su_root_destroy(root)
            su_deinit()
            started.signal()
            finished.signal()
            return
        }
        started.signal()
        var shutdownSent = false
        var shutdownDeadline = Date.distantFuture
        while true {
            _ = su_root_step(root, 50)
            for dialog in pending.withLock({ p -> [SIPDialog] in
                defer { p.removeAll() }; return p
            })
            where dialogs.contains(dialog) {
                ourHangUps.insert(dialog)
                et_nua_bye(dialog.handle)
            }
            if stopping.load(ordering: .acquiring) {
                if !shutdownSent {
                    shutdownSent = true
                    shutdownDeadline = Date().addingTimeInterval(3)
                    et_nua_shutdown(nua)
                } else if shutdownComplete || Date() > shutdownDeadline {
                    break
                }
            }
        }
        for dialog in dialogs { delegate?.ended(dialog, reason: "shutdown") }
        dialogs.removeAll()
        if shutdownComplete {
            nua_destroy(nua)
            su_root_destroy(root)
            su_deinit()
        } else {
            // A BYE to a peer that never answers keeps nua's transactions alive for up to 32 s;
            // nua_destroy would refuse and the root must not go while the stack uses it. The process
            // is ending: leave them to it.
            logger.warning("SIP stack did not finish shutting down in 3 s; left to the process exit")
        }
        finished.signal()
    }

    private var shutdownComplete = false
    /// Dialogs we sent BYE on ourselves; a BYE the stack sends on its own is the session timer's.
    private var ourHangUps: Set<SIPDialog> = []
    private var endReasons: [SIPDialog: String] = [:]

    private static let callback: nua_callback_f = { event, status, phrase, _, magic, nh, _, sip, tags in
        guard let magic else { return }
        let agent = Unmanaged<SIPUserAgent>.fromOpaque(UnsafeRawPointer(magic)).takeUnretainedValue()
        agent.handle(event: event, status: Int(status), nh: nh, sip: sip, tags: tags)
    }

    private func handle(
        event: nua_event_t, status: Int, nh: OpaquePointer?, sip: UnsafePointer<sip_t>?,
        tags: UnsafeMutablePointer<tagi_t>?
    ) {
        if logger.logLevel <= .debug {
            logger.debug(
                "sip event",
                metadata: ["event": "\(String(cString: nua_event_name(event)))", "status": "\(status)"])
        }
        switch event {
        case nua_i_invite:
            guard let nh else { return }
            invite(nh, sip: sip)
        case nua_i_state:
            guard let nh, et_callstate(tags) == Int32(nua_callstate_terminated.rawValue) else { return }
            let dialog = SIPDialog(nh)
            ourHangUps.remove(dialog)
            end(dialog, reason: endReasons.removeValue(forKey: dialog) ?? "bye")
            nua_handle_destroy(nh)
        case nua_r_bye:
            // nua sends BYE itself when the session timer runs out unrefreshed (Reason: 408 Session timeout).
            if let nh, !ourHangUps.contains(SIPDialog(nh)), !stopping.load(ordering: .relaxed) {
                endReasons[SIPDialog(nh)] = "session_expired"
            }
        case nua_i_bye:
            if let nh { end(SIPDialog(nh), reason: "bye") }
        case nua_i_cancel:
            if let nh { end(SIPDialog(nh), reason: "cancel") }
        case nua_r_shutdown:
            if status >= 200 { shutdownComplete = true }
        case nua_i_options, nua_i_message, nua_i_refer, nua_i_subscribe, nua_i_notify, nua_i_publish, nua_i_info,
            nua_i_method:
            // The stack answered; a request outside our dialogs leaves a handle that is ours to free
            // (an SBC's OPTIONS keep-alive every few seconds would otherwise leak one each time).
            if let nh, !dialogs.contains(SIPDialog(nh)) { nua_handle_destroy(nh) }
        default:
            break
        }
    }

    /// Why an INVITE was refused, as a Warning header (399: miscellaneous, RFC 3261 20.43), when the
    /// answer says more than the standard phrase; the status line keeps the standard one.
    static func warning(for answer: SIPAnswer) -> String? {
        let standard = sip_status_phrase(Int32(answer.status)).map { String(cString: $0) }
        guard answer.status >= 300, answer.reason != standard else { return nil }
        let text = answer.reason.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "\"", with: "\\\"").filter { $0 != "\r" && $0 != "\n" }
        return "399 emotiontap \"\(text)\""
    }

    private func end(_ dialog: SIPDialog, reason: String) {
        guard dialogs.remove(dialog) != nil else { return }
        delegate?.ended(dialog, reason: reason)
    }

    private func invite(_ nh: OpaquePointer, sip: UnsafePointer<sip_t>?) {
        let dialog = SIPDialog(nh)
        let isReinvite = dialogs.contains(dialog)
        guard let delegate, let sip else {
            et_nua_respond(nh, 500, nil, nil, nil, nil)
            if !isReinvite { nua_handle_destroy(nh) }
            return
        }
        let s = sip.pointee
        var body: [UInt8] = []
        if let pl = s.sip_payload, let data = pl.pointee.pl_data {
            body = Array(UnsafeRawBufferPointer(start: data, count: Int(pl.pointee.pl_len)))
        }
        let contentType: String? = s.sip_content_type.flatMap { ct in
            // c_type has no parameters; the boundary is needed to split a multipart body.
            var text = ct.pointee.c_type.map { String(cString: $0) } ?? ""
            var i: Int32 = 0
            while let param = et_list_item(ct.pointee.c_params, i) { text += ";" + String(cString: param); i += 1 }
            return text
        }
        var require: [String] = []
        if let r = s.sip_require {
            var i: Int32 = 0
            while let item = et_list_item(r.pointee.k_items, i) { require.append(String(cString: item)); i += 1 }
        }
        let invite = SIPInvite(
            dialog: dialog, isReinvite: isReinvite,
            callID: s.sip_call_id.flatMap { $0.pointee.i_id.map { String(cString: $0) } } ?? "",
            from: s.sip_from.flatMap { f in
                var url = f.pointee.a_url
                return url_as_string(nil, &url).map { c in
                    defer { su_free(nil, c) }; return String(cString: c)
                }
            },
            contentType: contentType, body: body, require: require)
        let answer = delegate.invite(invite)
        if answer.status >= 200, answer.status < 300 {
            dialogs.insert(dialog)
        } else if !isReinvite {
            logger.info(
                "INVITE refused",
                metadata: [
                    "sip.call_id": "\(invite.callID)", "sip.status": "\(answer.status)", "reason": "\(answer.reason)",
                ])
        }
        withOptionalCString(Self.warning(for: answer)) { warning in
            withOptionalCString(answer.sdp) { sdp in
                et_nua_respond(nh, Int32(answer.status), warning, sdp == nil ? nil : "application/sdp", sdp, nil)
            }
        }
        if answer.status >= 300, !isReinvite {
            // A refused first INVITE leaves no dialog; the handle is the stack's to drop after the response.
            nua_handle_destroy(nh)
        }
    }
}

private func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}
