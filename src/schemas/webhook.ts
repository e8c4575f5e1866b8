import { type Static, Type } from "@sinclair/typebox";
import { Cursor, limitParam, NextCursor, Nullable, StringEnum, Timestamp, Uuid } from "./common.js";

// Glossary: a webhook endpoint is a URL that receives, signed as Standard
// Webhooks 1.0, every audit event committed after it was created whose
// action matches one of its patterns. A delivery is one event on its way to
// one endpoint, with its attempts.

export const WEBHOOK_PATTERN = "^(\\*|[a-z][a-z0-9_.:-]{0,99}|[a-z][a-z0-9_.:-]{0,97}\\.\\*)$";

const Url = Type.String({
  minLength: 1,
  maxLength: 2000,
  // The scheme in any case, as URLs are case-insensitive there (the server reads `HTTP://` as http://); then a
  // host and no white space. The server still refuses what its URL parser cannot read or a non-public address.
  pattern: "^[hH][tT][tT][pP][sS]?://[^\\s/?#]+(?:[/?#]\\S*)?$",
  description: "Where to POST: an http or https URL (scheme in any case; at most 2,000 characters, no white space) of a public address.",
});
const Events = Type.Array(
  Type.String({
    pattern: WEBHOOK_PATTERN,
    description: "An audit action (`tenant.cancelled`), a prefix wildcard (`entitlement.*`) or `*`.",
  }),
  { minItems: 1, maxItems: 50, uniqueItems: true, description: "1 to 50 patterns; an event is sent when its action matches one." },
);
const Description = Type.String({ maxLength: 500, description: "Free text for people, at most 500 characters." });
const Enabled = Type.Boolean({ description: "A disabled endpoint receives nothing; events committed meanwhile are not sent later." });

export const Webhook = Type.Object(
  {
    id: Uuid,
    url: Type.String(),
    events: Type.Array(Type.String()),
    description: Nullable(Type.String()),
    enabled: Type.Boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "Webhook", title: "Webhook" },
);
export type Webhook = Static<typeof Webhook>;

const Secret = Type.String({
  pattern: "^whsec_",
  description: "The signing secret, `whsec_` + base64 of 32 bytes. Shown only in this response: keep it.",
});

export const WebhookCreated = Type.Object({ ...Webhook.properties, secret: Secret }, { title: "WebhookCreated" });
export type WebhookCreated = Static<typeof WebhookCreated>;

export const WebhookCreate = Type.Object(
  {
    url: Url,
    events: Events,
    description: Type.Optional(Nullable(Description)),
    enabled: Type.Optional(Type.Boolean({ default: true, description: Enabled.description })),
  },
  { additionalProperties: false },
);
export type WebhookCreate = Static<typeof WebhookCreate>;

export const WebhookPatch = Type.Object(
  {
    url: Type.Optional(Url),
    events: Type.Optional(Events),
    description: Type.Optional(Nullable(Description)),
    enabled: Type.Optional(Enabled),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type WebhookPatch = Static<typeof WebhookPatch>;

export const WebhookList = Type.Object({ webhooks: Type.Array(Type.Ref(Webhook)) });
export const WebhookSecret = Type.Object({
  secret: Secret,
  previous_secret_expires_at: Timestamp,
});

export const DELIVERY_STATUSES = ["pending", "succeeded", "failed", "dead"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export const WebhookDelivery = Type.Object(
  {
    id: Uuid,
    event_id: Nullable(Type.String({ pattern: "^[0-9]+$", description: "The audit event's id; null for webhook.test." })),
    event_type: Type.String({ description: "The audit action, or webhook.test." }),
    status: StringEnum(DELIVERY_STATUSES, {
      description: "pending (not attempted yet), succeeded, failed (will be retried), dead (gave up).",
    }),
    attempts: Type.Integer(),
    last_status_code: Nullable(Type.Integer({ description: "The HTTP status of the last attempt; null when none answered." })),
    last_error: Nullable(Type.String({ description: "Why the last attempt failed, when it did." })),
    next_attempt_at: Nullable(Type.String({ format: "date-time", description: "When it is tried next; null once succeeded or dead." })),
    created_at: Timestamp,
    delivered_at: Nullable(Type.String({ format: "date-time" })),
  },
  { $id: "WebhookDelivery", title: "WebhookDelivery" },
);
export type WebhookDelivery = Static<typeof WebhookDelivery>;

export const DeliveryListQuery = Type.Object(
  {
    status: Type.Optional(StringEnum(DELIVERY_STATUSES, { description: "Only deliveries in this state." })),
    limit: limitParam(50, 200),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
export const DeliveryList = Type.Object({ deliveries: Type.Array(Type.Ref(WebhookDelivery)), next_cursor: NextCursor });
export const DeliveryParams = Type.Object({ id: Uuid, delivery_id: Uuid }, { additionalProperties: false });

export const Accepted = Type.Object({
  delivery_id: Uuid,
  message_id: Type.String({ description: "The webhook-id the receiver sees." }),
});
