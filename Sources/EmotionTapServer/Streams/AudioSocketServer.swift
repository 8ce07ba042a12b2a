import EmotionMedia
import EmotionStreams
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Asterisk AudioSocket over TCP: one connection per leg. The UUID Asterisk sends first names the
/// stream: a leg the API made for it (`POST /v1/legs` with `audiosocket_uuid`, which gives the call id,
/// role and agent) takes the connection; otherwise a leg is made with the UUID as call id and
/// `streams.audiosocket_role`. Audio (slin at 8 kHz, or the higher-rate kinds, resampled) goes into
/// the leg's inbox; DTMF is ignored; hangup, error and the socket closing end the leg. A bad frame is
/// counted (`malformed`) and skipped; only a connection that never says who it is is dropped.
public final class AudioSocketServer: Service, @unchecked Sendable {
    let manager: LegManager
    let host: String
    let requestedPort: Int
    let role: String
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    private let lock = NSLock()
    private var channel: (any Channel)?
    /// Open connections by leg id, so a leg that ends on our side (timeout, DELETE) closes its socket.
    private var connections: [String: any Channel] = [:]
    let refused: Counter
    let malformedFrames: Counter

    public init(
        manager: LegManager, listen: String, role: String, logger: Logger,
        metrics: any MetricsFactory = MetricsSystem.factory
    ) throws(ServiceError) {
        do { (host, requestedPort) = try StreamsConfig.hostPort(listen) } catch {
            throw ServiceError("streams.audiosocket: \(error)")
        }
        self.manager = manager
        self.role = role
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        refused = Counter(
            label: "emotiontap_stream_connections_refused_total", dimensions: [("stream", "audiosocket")],
            factory: metrics)
        malformedFrames = Counter(
            label: "emotiontap_stream_malformed_total", dimensions: [("stream", "audiosocket")], factory: metrics)
        manager.onLegEnded { [weak self] identity in self?.legEnded(identity.legID) }
    }

    /// Binds now (so a port in use fails the start, and port 0 is resolved): the port it listens on.
    public func bind() async throws -> Int {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(AudioSocketFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(AudioSocketConnection(server: self))
                }
            }
        let c = try await bootstrap.bind(host: host, port: requestedPort).get()
        lock.withLock { channel = c }
        let port = c.localAddress?.port ?? requestedPort
        logger.info("AudioSocket listening", metadata: ["audiosocket": "\(host):\(port)"])
        return port
    }

    public var port: Int? { lock.withLock { channel?.localAddress?.port } }

    public func run() async throws {
        if port == nil { _ = try await bind() }
        try? await gracefulShutdown()
        let c = lock.withLock { channel }
        try? await c?.close()
        // Legs end with the leg manager's shutdown (reason `shutdown`); close what is left.
        for connection in lock.withLock({ Array(connections.values) }) { try? await connection.close() }
        try? await group.shutdownGracefully()
    }

    func attach(_ legs: StreamLegs, to channel: any Channel) {
        lock.withLock { for leg in legs.legs { connections[leg.id] = channel } }
    }

    func detach(_ legs: StreamLegs) {
        lock.withLock { for leg in legs.legs { connections[leg.id] = nil } }
    }

    private func legEnded(_ legID: String) {
        guard let channel = lock.withLock({ connections.removeValue(forKey: legID) }) else { return }
        channel.close(promise: nil)
    }
}

/// Splits the byte stream into frames: kind, big-endian 16-bit length, payload.
struct AudioSocketFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = (kind: UInt8, payload: ByteBuffer)

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let kind: UInt8 = buffer.getInteger(at: buffer.readerIndex),
            let length: UInt16 = buffer.getInteger(at: buffer.readerIndex + 1, endianness: .big),
            buffer.readableBytes >= AudioSocket.headerSize + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: AudioSocket.headerSize)
        let payload = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(wrapInboundOut((kind, payload)))
        return .continue
    }
}

/// One AudioSocket connection: waits for the UUID (5 s), then feeds the leg.
final class AudioSocketConnection: ChannelInboundHandler, @unchecked Sendable {
    // Touched on the channel's event loop only.
    typealias InboundIn = (kind: UInt8, payload: ByteBuffer)
    let server: AudioSocketServer
    private var legs: StreamLegs?
    private var uuidTimer: Scheduled<Void>?
    private var endReason = "closed"

    init(server: AudioSocketServer) { self.server = server }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        uuidTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(AudioSocket.uuidTimeoutSeconds * 1000))) {
            [weak self] in
            guard let self, self.legs == nil else { return }
            self.server.logger.warning(
                "AudioSocket connection sent no UUID in time; closed",
                metadata: ["peer": "\(channel.remoteAddress?.description ?? "?")"])
            self.server.refused.increment()
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let (kind, payload) = unwrapInboundIn(data)
        let message = payload.withUnsafeReadableBytes { AudioSocket.message(kind: kind, payload: $0) }
        switch message {
        case .failure(let problem):
            server.malformedFrames.increment()
            guard let legs else { return refuse(context, "the first frame is not a UUID: \(problem)") }
            legs.countMalformed()
            server.logger.debug("AudioSocket frame skipped", metadata: ["error": "\(problem)"])
        case .success(.uuid(let uuid)):
            guard legs == nil else {
                server.malformedFrames.increment()
                legs?.countMalformed()
                return
            }
            start(context, uuid: uuid.uuidString.lowercased())
        case .success(.audio(let rate)):
            guard let legs else { return refuse(context, "audio before the UUID") }
            if rate != legs.format.sampleRate {
                do {
                    try legs.change(
                        format: StreamAudioFormat(encoding: .l16LittleEndian, sampleRate: rate, channels: 1))
                } catch {
                    legs.countMalformed()
                    return
                }
            }
            payload.withUnsafeReadableBytes { _ = legs.push($0) }
        case .success(.dtmf):
            break
        case .success(.hangup):
            endReason = "hangup"
            context.close(promise: nil)
        case .success(.error(let code)):
            endReason = "error"
            server.logger.info(
                "AudioSocket peer sent an error", metadata: ["code": "\(code.map { String($0) } ?? "none")"])
            context.close(promise: nil)
        }
    }

    private func start(_ context: ChannelHandlerContext, uuid: String) {
        uuidTimer?.cancel()
        let origin = StreamOrigin(kind: "audiosocket", id: uuid)
        let format = StreamAudioFormat(encoding: .l16LittleEndian, sampleRate: 8000, channels: 1)
        let manager = server.manager
        do throws(LegRequestError) {
            let made: StreamLegs
            if let claimed = manager.claimStream(origin) {
                let role = manager.snapshot(legID: claimed.legID)?.identity.role ?? server.role
                made = try StreamLegs(
                    manager: manager, claimed: claimed.legID, role: role, inbox: claimed.inbox, format: format)
            } else {
                made = try StreamLegs(
                    manager: manager, format: format, callID: uuid, roles: [server.role], origin: origin,
                    listenerPort: server.port ?? 0, source: Self.source(context.channel.remoteAddress),
                    agentID: nil, tags: [:], exclusive: true)
            }
            legs = made
            server.attach(made, to: context.channel)
        } catch {
            refuse(context, "no leg for \(uuid): \(error)")
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ why: String) {
        server.refused.increment()
        server.logger.warning(
            "AudioSocket connection refused",
            metadata: ["reason": "\(why)", "peer": "\(context.remoteAddress?.description ?? "?")"])
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        uuidTimer?.cancel()
        if let legs {
            server.detach(legs)
            legs.end(reason: endReason)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        endReason = "error"
        server.logger.debug("AudioSocket connection failed", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    static func source(_ address: SocketAddress?) -> SourceAddress {
        guard case .v4(let a)? = address else { return SourceAddress(ipv4: 0, port: 0) }
        return SourceAddress(
            ipv4: UInt32(bigEndian: a.address.sin_addr.s_addr), port: UInt16(a.address.sin_port.bigEndian))
    }
}
