import { createHmac, randomBytes } from "node:crypto";

/**
 * Standard Webhooks 1.0 signing. A secret is `whsec_` + base64 of 32 random
 * bytes; the HMAC-SHA256 key is those bytes. The signed content is
 * `<webhook-id>.<webhook-timestamp>.<body>`; the header carries one
 * `v1,<base64 signature>` per live secret, space separated, so a receiver
 * holding either secret during a rotation verifies the message.
 */
export const SECRET_PREFIX = "whsec_";

export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString("base64");
}

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, "base64");
}

export function sign(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  return `v1,${createHmac("sha256", keyOf(secret)).update(`${messageId}.${timestampSeconds}.${body}`).digest("base64")}`;
}

export interface SignedHeaders {
  "content-type": "application/json";
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

export function signedHeaders(secrets: readonly string[], messageId: string, body: string, now = new Date()): SignedHeaders {
  const ts = Math.floor(now.getTime() / 1000);
  return {
    "content-type": "application/json",
    "webhook-id": messageId,
    "webhook-timestamp": String(ts),
    "webhook-signature": secrets.map((s) => sign(s, messageId, ts, body)).join(" "),
  };
}
