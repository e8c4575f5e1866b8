import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { AddressRefused, type Resolver, resolveWebhookTarget } from "./webhook-address.js";
import type { SignedHeaders } from "./webhook-signing.js";

export interface AttemptResult {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
}

const MAX_ERROR = 300;

/**
 * One POST to a receiver. The host is resolved and checked first, and the
 * socket connects to exactly that address (a lookup that answers with it),
 * while TLS still verifies the certificate against the URL's host name.
 * The whole attempt, connect to status line, is bounded by `timeoutMs`.
 */
export class WebhookSender {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 256 });

  constructor(private readonly opts: { allowPrivate: boolean; timeoutMs: number; resolve?: Resolver }) {}

  /** `cut` ends the attempt early (its lease was lost); its reason becomes the attempt's error. */
  async send(rawUrl: string, headers: SignedHeaders, body: string, cut?: AbortSignal): Promise<AttemptResult> {
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const signal = cut ? AbortSignal.any([timeout, cut]) : timeout;
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      return { ok: false, statusCode: null, error: "the URL is not valid" };
    }
    let lookup: LookupFunction;
    try {
      const target = await resolveWebhookTarget(url, this.opts.allowPrivate, this.opts.resolve);
      lookup = ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
        if (options?.all) cb(null, [{ address: target.address, family: target.family }]);
        else cb(null, target.address, target.family);
      }) as LookupFunction;
    } catch (err) {
      const message = err instanceof AddressRefused ? `refused: ${err.message}` : "the host could not be resolved";
      return { ok: false, statusCode: null, error: message };
    }
    const secure = url.protocol === "https:";
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const done = (r: AttemptResult) => {
        if (settled) return;
        settled = true;
        resolve(r);
      };
      const req = (secure ? https : http).request(
        url,
        {
          method: "POST",
          agent: secure ? this.httpsAgent : this.httpAgent,
          lookup,
          signal,
          headers: { ...headers, "content-length": Buffer.byteLength(body), "user-agent": "tenant-registry-webhooks/1" },
        },
        (res) => {
          const code = res.statusCode ?? 0;
          // Drain and discard the answer's body so the connection can be reused.
          res.resume();
          res.on("error", () => {});
          done({ ok: code >= 200 && code < 300, statusCode: code, error: code >= 200 && code < 300 ? null : `HTTP ${code}` });
        },
      );
      req.on("error", (err: NodeJS.ErrnoException) => {
        const message = cut?.aborted
          ? String((cut.reason as Error | undefined)?.message ?? "the attempt was cut")
          : timeout.aborted
            ? `no answer within ${this.opts.timeoutMs} ms`
            : `${err.code ?? "error"}: ${err.message}`;
        done({ ok: false, statusCode: null, error: message.slice(0, MAX_ERROR) });
      });
      req.end(body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
