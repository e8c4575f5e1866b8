import net from "node:net";

export type ProxyMode = "up" | "refuse" | "blackhole";

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  /** What the client sent first (its startup message names user, database and application_name). */
  sent: string;
  /** Kept open, forwarding nothing either way: a silently dead path (NAT/firewall drop, failover). */
  stalled: boolean;
}

const SENT_KEPT = 4096;

/**
 * A TCP proxy on loopback in front of PostgreSQL, so a test can cut the
 * database off (refuse: connections reset at once; blackhole: accepted and
 * never answered) and bring it back, without touching the shared server.
 * `blackhole(match)` silences chosen open connections without closing them
 * (no FIN, no RST), as a NAT or firewall that drops a flow does.
 */
export class TcpProxy {
  mode: ProxyMode = "up";
  private readonly sockets = new Set<net.Socket>();
  private readonly links = new Set<Link>();
  private server = net.createServer((client) => this.accept(client));

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    if (!address || typeof address === "string") throw new Error("no port");
    return address.port;
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
    s.on("error", () => s.destroy());
  }

  private accept(client: net.Socket): void {
    this.track(client);
    if (this.mode === "refuse") {
      client.destroy();
      return;
    }
    if (this.mode === "blackhole") return;
    const upstream = net.connect(this.targetPort, this.targetHost);
    this.track(upstream);
    const link: Link = { client, upstream, sent: "", stalled: false };
    this.links.add(link);
    client.on("data", (d: Buffer) => {
      if (link.sent.length < SENT_KEPT) link.sent += d.toString("latin1").slice(0, SENT_KEPT - link.sent.length);
      if (!link.stalled) upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      if (!link.stalled) client.write(d);
    });
    const drop = () => {
      this.links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", drop);
    upstream.on("close", drop);
  }

  /**
   * Stop forwarding on the open connections whose client-sent bytes `match`
   * (all of them without `match`), keeping them open. Without `match`, new
   * connections are blackholed too. Returns how many were silenced.
   */
  blackhole(match?: (sent: string) => boolean): number {
    let n = 0;
    for (const link of this.links) {
      if (!match || match(link.sent)) {
        link.stalled = true;
        n++;
      }
    }
    if (!match) this.mode = "blackhole";
    return n;
  }

  /** Cut every open connection and treat new ones as `mode` says. */
  sever(mode: Exclude<ProxyMode, "up">): void {
    this.mode = mode;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    for (const s of this.sockets) s.destroy();
    this.mode = "up";
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
