import { lookup as dnsLookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { AppError } from "./errors.js";

/**
 * The SSRF guard: a webhook URL must name a host that is, and resolves only
 * to, public addresses. Checked when an endpoint is created or changed, and
 * again before every attempt, whose connection then goes to the address
 * that was checked (see webhook-sender.ts), so a DNS answer that changes
 * between check and connect (rebinding) cannot reach an internal address.
 */
const NON_PUBLIC = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // RFC 1918
  ["100.64.0.0", 10], // CGNAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local (cloud metadata lives here)
  ["172.16.0.0", 12], // RFC 1918
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // TEST-NET-1
  ["192.168.0.0", 16], // RFC 1918
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // TEST-NET-2
  ["203.0.113.0", 24], // TEST-NET-3
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  NON_PUBLIC.addSubnet(net, bits, "ipv4");
}
for (const [net, bits] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["::", 96], // IPv4-compatible (deprecated) forms
  ["64:ff9b:1::", 48], // local-use NAT64 (RFC 8215): its translators are the network's own, refused whole
  ["100::", 64], // discard-only
  ["2001:2::", 48], // benchmarking
  ["fc00::", 7], // unique-local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
  ["2001:db8::", 32], // documentation
] as const) {
  NON_PUBLIC.addSubnet(net, bits, "ipv6");
}

/** The 8 groups of a valid IPv6 address (a dotted IPv4 tail becomes two groups; a zone is dropped). */
function ipv6Groups(address: string): number[] {
  let text = address.split("%")[0] ?? "";
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16)));
  const h = parse(head);
  if (tail === undefined) return h;
  const t = parse(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

const ipv4Of = (hi: number, lo: number) => `${hi >>> 8}.${hi & 0xff}.${lo >>> 8}.${lo & 0xff}`;

/**
 * The IPv4 addresses an IPv6 address embeds, by the forms that carry one:
 * IPv4-mapped ::ffff:0:0/96, IPv4-translated ::ffff:0:0:0/96, NAT64
 * 64:ff9b::/96 (the last 32 bits), 6to4 2002::/16 (bits 16-47) and Teredo
 * 2001::/32 (its server, bits 32-63, and its client, the last 32 bits
 * inverted). Each is judged like an IPv4 address of its own.
 */
export function embeddedIpv4(address: string): string[] {
  const g = ipv6Groups(address);
  if (g.length !== 8) return [];
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [number, number, number, number, number, number, number, number];
  const zeros = (...xs: number[]) => xs.every((x) => x === 0);
  if (zeros(g0, g1, g2, g3, g4) && g5 === 0xffff) return [ipv4Of(g6, g7)];
  if (zeros(g0, g1, g2, g3) && g4 === 0xffff && g5 === 0) return [ipv4Of(g6, g7)];
  if (g0 === 0x64 && g1 === 0xff9b && zeros(g2, g3, g4, g5)) return [ipv4Of(g6, g7)];
  if (g0 === 0x2002) return [ipv4Of(g1, g2)];
  if (g0 === 0x2001 && g1 === 0) return [ipv4Of(g2, g3), ipv4Of(~g6 & 0xffff, ~g7 & 0xffff)];
  return [];
}

/**
 * True when `address` (IPv4 or IPv6) is not a public unicast address: it
 * lies in a non-public range, or it is an IPv6 form that embeds an IPv4
 * address and any address it embeds is not public.
 */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return NON_PUBLIC.check(address, "ipv4");
  if (family === 6) {
    const embedded = embeddedIpv4(address);
    if (embedded.some((a) => NON_PUBLIC.check(a, "ipv4"))) return true;
    // BlockList also judges ::ffff:a.b.c.d by the IPv4 rules; the mapped forms were judged just above.
    return NON_PUBLIC.check(address.split("%")[0] ?? address, "ipv6");
  }
  return true;
}

export interface ResolvedTarget {
  /** The address to connect to: checked, when the check is on. */
  address: string;
  family: 4 | 6;
}

export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;

const systemResolver: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });

export class AddressRefused extends Error {
  override name = "AddressRefused";
  constructor(
    message: string,
    /** The address is non-public (WEBHOOK_ALLOW_PRIVATE=true would allow it), rather than unresolvable. */
    readonly nonPublic = false,
  ) {
    super(message);
  }
}

/**
 * Resolve the URL's host and return the address to connect to. Refuses a
 * host that does not resolve, and (unless `allowPrivate`) one with any
 * non-public address among its answers: a name that also points inward is
 * refused outright rather than raced.
 */
export async function resolveWebhookTarget(url: URL, allowPrivate: boolean, resolve: Resolver = systemResolver): Promise<ResolvedTarget> {
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  let answers: { address: string; family: number }[];
  if (isIP(host)) answers = [{ address: host, family: isIP(host) }];
  else {
    try {
      answers = await resolve(host);
    } catch {
      throw new AddressRefused(`the host ${host} cannot be resolved`);
    }
  }
  const first = answers[0];
  if (!first) throw new AddressRefused(`the host ${host} cannot be resolved`);
  if (!allowPrivate) {
    const bad = answers.find((a) => isNonPublicAddress(a.address));
    if (bad) throw new AddressRefused(`the host ${host} is or resolves to ${bad.address}, which is not a public address`, true);
  }
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

/** Create/update: a refused URL is a 400 naming the field. */
export async function checkWebhookUrl(raw: string, allowPrivate: boolean, field = "body/url"): Promise<void> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError("invalid_input", `${field}: is not a URL`, { errors: [{ field, message: "is not a URL" }] });
  }
  const fail = (message: string) => new AppError("invalid_input", `${field}: ${message}`, { errors: [{ field, message }] });
  if (url.protocol !== "http:" && url.protocol !== "https:") throw fail("must be an http or https URL");
  if (url.username || url.password) throw fail("must not carry credentials");
  try {
    await resolveWebhookTarget(url, allowPrivate);
  } catch (err) {
    if (err instanceof AddressRefused) throw fail(err.message);
    throw err;
  }
}
