import { type Static, Type } from "@sinclair/typebox";
import { Cursor, InputTimestamp, limitParam, NextCursor, Nullable, StringEnum, Timestamp, TrimmedText, Uuid } from "./common.js";

// Glossary: a tenant is one customer (or internal team, partner, demo) of the
// company. Its status moves pending -> active -> cancelled and never back.

export const TENANT_PLANS = ["starter", "growth", "enterprise"] as const;
export const TENANT_KINDS = ["customer", "internal", "partner", "demo"] as const;
export const TENANT_STATUSES = ["pending", "active", "cancelled"] as const;

export const Plan = StringEnum(TENANT_PLANS, { description: "Commercial plan." });
export const Kind = StringEnum(TENANT_KINDS, { description: "What sort of tenant this is." });
export const TenantStatus = StringEnum(TENANT_STATUSES, { description: "Lifecycle: pending (new) -> active -> cancelled (terminal)." });

export const Slug = Type.String({
  minLength: 3,
  maxLength: 63,
  pattern: "^[a-z][a-z0-9-]*[a-z0-9]$",
  description: "3-63 chars of [a-z0-9-], starting with a letter, not ending with '-'. Unique.",
});
export const TenantName = TrimmedText(200, "Display name, 1-200 chars after trimming (stored trimmed).");
const ShortText = (description: string) => Type.String({ minLength: 1, maxLength: 200, description });

export const Tenant = Type.Object(
  {
    id: Uuid,
    slug: Slug,
    name: Type.String(),
    plan: Plan,
    kind: Kind,
    status: TenantStatus,
    sales_owner: Nullable(Type.String({ description: "Who sells to this tenant." })),
    erp_customer_id: Nullable(Type.String({ description: "Customer id in the ERP." })),
    stripe_customer_id: Nullable(Type.String({ description: "Customer id in Stripe." })),
    trial_ends_at: Nullable(Timestamp),
    contract_start: Nullable(Timestamp),
    contract_end: Nullable(Timestamp),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "Tenant", title: "Tenant" },
);
export type Tenant = Static<typeof Tenant>;

export const TenantCreate = Type.Object(
  {
    slug: Slug,
    name: TenantName,
    plan: Type.Optional(Plan),
    kind: Type.Optional(Kind),
    sales_owner: Type.Optional(Nullable(ShortText("Who sells to this tenant."))),
  },
  { additionalProperties: false },
);
export type TenantCreate = Static<typeof TenantCreate>;

export const TenantPatch = Type.Object(
  {
    plan: Type.Optional(Plan),
    sales_owner: Type.Optional(Nullable(ShortText("Who sells to this tenant; null clears."))),
    erp_customer_id: Type.Optional(Nullable(ShortText("Customer id in the ERP; null clears."))),
    stripe_customer_id: Type.Optional(Nullable(ShortText("Customer id in Stripe; null clears."))),
    trial_ends_at: Type.Optional(Nullable(InputTimestamp("When the tenant's trial ends; null clears."))),
    contract_start: Type.Optional(Nullable(InputTimestamp("When the contract starts; null clears."))),
    contract_end: Type.Optional(Nullable(InputTimestamp("When the contract ends, not before contract_start; null clears."))),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type TenantPatch = Static<typeof TenantPatch>;

export const TenantListQuery = Type.Object(
  {
    status: Type.Optional(TenantStatus),
    plan: Type.Optional(Plan),
    kind: Type.Optional(Kind),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "Case-insensitive search in slug and name." })),
    limit: limitParam(50, 200),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
export type TenantListQuery = Static<typeof TenantListQuery>;

export const TenantList = Type.Object({ tenants: Type.Array(Type.Ref(Tenant)), next_cursor: NextCursor });

/** A malformed slug in the path is a 400, like a malformed id. */
export const SlugParams = Type.Object({ slug: Slug }, { additionalProperties: false });
