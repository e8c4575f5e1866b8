import net from "node:net";

export type ProxyMode = "up" | "refuse" | "blackhole";

/**
 * A TCP proxy on loopback in front of PostgreSQL, so a test can cut the
 * database off (refuse: connections reset at once; blackhole: accepted and
 * never answered) and bring it back, without touching the shared server.
 */
export class TcpProxy {
  mode: ProxyMode = "up";
  private readonly sockets = new Set<net.Socket>();
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
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
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
