import { Type } from "@sinclair/typebox";
import { notFound } from "../domain/errors.js";
import { checkWebhookUrl } from "../domain/webhook-address.js";
import { createWebhook, deleteWebhook, redactUrl, rotateWebhookSecret, testWebhook, updateWebhook } from "../domain/webhooks.js";
import { IdParams, ProblemRef } from "../schemas/common.js";
import {
  Accepted,
  DeliveryList,
  DeliveryListQuery,
  DeliveryParams,
  Webhook,
  WebhookCreate,
  WebhookCreated,
  WebhookList,
  WebhookPatch,
  WebhookSecret,
} from "../schemas/webhook.js";
import { deliveryList, deliveryRetry, webhookFindById, webhookList } from "../store/webhooks.js";
import { CursorPart, decodeCursor, page } from "./pagination.js";
import type { App, Deps } from "./types.js";

const errors = { 400: ProblemRef, 401: ProblemRef, 403: ProblemRef, 404: ProblemRef };
const tags = ["webhooks"];
const WebhookRef = Type.Ref(Webhook);

/** Auditors see an endpoint's URL without its query and fragment (receivers often put a credential there); admins see it whole. */
const asSeenBy = (role: string | undefined, w: Webhook): Webhook => (role === "admin" ? w : { ...w, url: redactUrl(w.url) });

export interface WebhookRouteDeps extends Deps {
  /** A delivery became due on this instance: attempt it now rather than at the next poll. */
  wake: () => void;
}

export async function webhookRoutes(app: App, { db, config, wake }: WebhookRouteDeps): Promise<void> {
  const allowPrivate = config.webhooks.allowPrivate;

  app.post(
    "/v1/webhooks",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Create a webhook endpoint",
        description:
          "Returns the signing `secret` once, in this response. The endpoint receives every audit event committed after it was created whose action matches one of `events`, signed as Standard Webhooks 1.0. " +
          "400 when the URL's host is or resolves to a non-public address, or cannot be resolved.",
        body: WebhookCreate,
        response: { 201: WebhookCreated, ...errors },
      },
    },
    async (req, reply) => {
      await checkWebhookUrl(req.body.url, allowPrivate);
      const created = await db.tx((q) => createWebhook(q, req.body, req.actor));
      return reply.code(201).header("location", `/v1/webhooks/${created.id}`).send(created);
    },
  );

  app.get(
    "/v1/webhooks",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags,
        summary: "List webhook endpoints",
        description: "Newest first. Never the secret. Auditors see each URL without its query and fragment; admins see it whole.",
        response: { 200: WebhookList, ...errors },
      },
    },
    async (req) => ({ webhooks: (await webhookList(db)).map((w) => asSeenBy(req.actor.role, w)) }),
  );

  app.get(
    "/v1/webhooks/:id",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags,
        summary: "One webhook endpoint",
        description: "Never the secret. Auditors see the URL without its query and fragment; admins see it whole.",
        params: IdParams,
        response: { 200: WebhookRef, ...errors },
      },
    },
    async (req) => {
      const w = await webhookFindById(db, req.params.id);
      if (!w) throw notFound("webhook");
      return asSeenBy(req.actor.role, w);
    },
  );

  app.patch(
    "/v1/webhooks/:id",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Change a webhook endpoint",
        description:
          "Changes `url`, `events`, `description` or `enabled`; audited as webhook.updated when something changed. A new URL is checked like at create.",
        params: IdParams,
        body: WebhookPatch,
        response: { 200: WebhookRef, ...errors },
      },
    },
    async (req) => {
      if (req.body.url !== undefined) await checkWebhookUrl(req.body.url, allowPrivate);
      return db.tx((q) => updateWebhook(q, req.params.id, req.body, req.actor));
    },
  );

  app.delete(
    "/v1/webhooks/:id",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Delete a webhook endpoint",
        description: "Its pending deliveries are dropped, with its delivery history.",
        params: IdParams,
        response: { 204: Type.Null({ description: "Deleted." }), ...errors },
      },
    },
    async (req, reply) => {
      await db.tx((q) => deleteWebhook(q, req.params.id, req.actor));
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/v1/webhooks/:id/rotate-secret",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Rotate a webhook endpoint's secret",
        description:
          "Returns the new secret once. The previous one keeps signing alongside it for 24 h (`previous_secret_expires_at`): each message carries both signatures meanwhile.",
        params: IdParams,
        response: { 200: WebhookSecret, ...errors },
      },
    },
    async (req) => db.tx((q) => rotateWebhookSecret(q, req.params.id, req.actor)),
  );

  app.post(
    "/v1/webhooks/:id/test",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Send a test message",
        description:
          "Queues a `webhook.test` message to this endpoint only, whatever its patterns (`webhook-id` msg_test_<uuid>, data `{webhook_id}`); it is not an audit event. Its delivery shows in the endpoint's deliveries.",
        params: IdParams,
        response: { 202: Accepted, ...errors },
      },
    },
    async (req, reply) => {
      const accepted = await db.tx((q) => testWebhook(q, req.params.id));
      wake();
      return reply.code(202).send(accepted);
    },
  );

  app.get(
    "/v1/webhooks/:id/deliveries",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags,
        summary: "A webhook endpoint's deliveries",
        description: "Newest first, paged with `cursor`; filter `status`. Kept for 30 days.",
        params: IdParams,
        querystring: DeliveryListQuery,
        response: { 200: DeliveryList, ...errors },
      },
    },
    async (req) => {
      const { status, limit, cursor } = req.query;
      const before = cursor ? decodeCursor("deliveries", cursor, [CursorPart.timestamp, CursorPart.uuid]) : undefined;
      if (!(await webhookFindById(db, req.params.id))) throw notFound("webhook");
      const rows = await deliveryList(db, {
        endpointId: req.params.id,
        limit: limit + 1,
        ...(status ? { status } : {}),
        ...(before ? { before: { createdAt: before[0] as string, id: before[1] as string } } : {}),
      });
      const { items, next_cursor } = page(rows, limit, "deliveries", (d) => [d.created_at, d.id]);
      return { deliveries: items, next_cursor };
    },
  );

  app.post(
    "/v1/webhooks/:id/deliveries/:delivery_id/retry",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Retry a delivery now",
        description: "A new attempt now, whatever the delivery's state (a dead one too), with the same `webhook-id`.",
        params: DeliveryParams,
        response: { 202: Accepted, ...errors },
      },
    },
    async (req, reply) => {
      const r = await db.tx((q) => deliveryRetry(q, req.params.id, req.params.delivery_id));
      if (!r) throw notFound("delivery");
      wake();
      return reply.code(202).send({ delivery_id: req.params.delivery_id, message_id: r.message_id });
    },
  );
}
