import { randomUUID } from "node:crypto";
import type { Webhook, WebhookCreate, WebhookCreated, WebhookPatch } from "../schemas/webhook.js";
import { auditInsert } from "../store/audit.js";
import type { Queryable } from "../store/db.js";
import {
  deliveryInsertTest,
  webhookDelete,
  webhookFindById,
  webhookInsert,
  webhookRotateSecret,
  webhookUpdate,
} from "../store/webhooks.js";
import { type Actor, auditActor } from "./actor.js";
import { notFound } from "./errors.js";
import { newWebhookSecret } from "./webhook-signing.js";

/** How long the previous secret keeps signing after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 60 * 60 * 1000;

const target = (id: string) => ({ tenant_id: null, target_type: "webhook", target_id: id });

/**
 * What the audit trail records of an endpoint. Never the secret; the URL
 * without its query string and fragment, which sometimes carry a token.
 */
function shown(w: Pick<Webhook, "url" | "events" | "enabled" | "description">): Record<string, unknown> {
  return { url: redactUrl(w.url), events: w.events, enabled: w.enabled, description: w.description };
}

export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "";
  }
}

/** Create an endpoint and its webhook.created event; it receives events committed after this one. */
export async function createWebhook(q: Queryable, input: WebhookCreate, actor: Actor): Promise<WebhookCreated> {
  const id = randomUUID();
  const secret = newWebhookSecret();
  const fields = { url: input.url, events: input.events, enabled: input.enabled ?? true, description: input.description ?? null };
  const [event] = await auditInsert(q, [{ ...target(id), action: "webhook.created", ...auditActor(actor, shown(fields)) }]);
  if (!event) throw new Error("audit insert returned no event");
  const webhook = await webhookInsert(q, { id, ...fields, secret, afterEventId: event.id });
  return { ...webhook, secret };
}

export async function updateWebhook(q: Queryable, id: string, patch: WebhookPatch, actor: Actor): Promise<Webhook> {
  const before = await webhookFindById(q, id, true);
  if (!before) throw notFound("webhook");
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  const was = shown(before);
  const will = shown({ ...before, ...patch });
  for (const k of Object.keys(patch) as (keyof WebhookPatch)[]) {
    if (JSON.stringify(was[k]) !== JSON.stringify(will[k]) || (k === "url" && patch.url !== before.url)) {
      changes[k] = { from: was[k], to: will[k] };
    }
  }
  if (Object.keys(changes).length === 0) return before;
  const after = await webhookUpdate(q, id, patch);
  await auditInsert(q, [{ ...target(id), action: "webhook.updated", ...auditActor(actor, { changes }) }]);
  return after;
}

export async function deleteWebhook(q: Queryable, id: string, actor: Actor): Promise<void> {
  const before = await webhookFindById(q, id, true);
  if (!before) throw notFound("webhook");
  await webhookDelete(q, id);
  await auditInsert(q, [{ ...target(id), action: "webhook.deleted", ...auditActor(actor, shown(before)) }]);
}

export async function rotateWebhookSecret(
  q: Queryable,
  id: string,
  actor: Actor,
): Promise<{ secret: string; previous_secret_expires_at: string }> {
  if (!(await webhookFindById(q, id, true))) throw notFound("webhook");
  const secret = newWebhookSecret();
  const expires = await webhookRotateSecret(q, id, secret, ROTATION_OVERLAP_MS);
  const previous_secret_expires_at = expires.toISOString();
  await auditInsert(q, [{ ...target(id), action: "webhook.secret_rotated", ...auditActor(actor, { previous_secret_expires_at }) }]);
  return { secret, previous_secret_expires_at };
}

/** Queue a webhook.test message to this endpoint only (not an audit event). */
export async function testWebhook(q: Queryable, id: string): Promise<{ delivery_id: string; message_id: string }> {
  if (!(await webhookFindById(q, id))) throw notFound("webhook");
  const message_id = `msg_test_${randomUUID()}`;
  const delivery_id = await deliveryInsertTest(q, id, message_id);
  return { delivery_id, message_id };
}
