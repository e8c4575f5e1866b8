import { type Static, Type } from "@sinclair/typebox";
import { ProductKey } from "./catalog.js";
import { Nullable, StringEnum, Timestamp, Uuid } from "./common.js";

// Glossary: an entitlement says what a tenant may do with one product.
// requested: asked for, waiting for activation or a grant. trial: usable until
// trial_ends_at (one trial per tenant and product, ever). active: usable.
// cancelled: revoked, or the tenant was cancelled. expired: the trial ran out.

export const ENTITLEMENT_STATUSES = ["requested", "trial", "active", "cancelled", "expired"] as const;
export type EntitlementStatus = (typeof ENTITLEMENT_STATUSES)[number];

export const Entitlement = Type.Object(
  {
    tenant_id: Uuid,
    product: Type.String({ description: "The product's key (possibly a retired product)." }),
    status: StringEnum(ENTITLEMENT_STATUSES, {
      description: "requested | trial | active | cancelled | expired. A trial past trial_ends_at reads as expired.",
    }),
    trial_ends_at: Nullable(
      Type.String({
        format: "date-time",
        description: "When the trial ends or ended (earlier than planned when granted or cancelled during it); null if never on trial.",
      }),
    ),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "Entitlement", title: "Entitlement" },
);
export type Entitlement = Static<typeof Entitlement>;

export const EntitlementList = Type.Object({
  entitlements: Type.Array(Type.Ref(Entitlement), { description: "Every entitlement of the tenant, by product key." }),
});

export const EntitlementListQuery = Type.Object({ tenant_id: Uuid }, { additionalProperties: false });
export type EntitlementListQuery = Static<typeof EntitlementListQuery>;

export const EntitlementChange = Type.Object(
  {
    tenant_id: Uuid,
    product: ProductKey,
    status: StringEnum(["active", "cancelled"] as const, { description: "active grants the product; cancelled revokes it." }),
  },
  { additionalProperties: false },
);
export type EntitlementChange = Static<typeof EntitlementChange>;
