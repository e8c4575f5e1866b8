import { type Static, Type } from "@sinclair/typebox";
import { Nullable, Uuid } from "./common.js";

// Glossary: a product is something the company sells (analytics, billing, …).
// The catalog file lists the products on sale; the store keeps every product
// ever listed, marking the ones that left the file as retired.

/** The one rule for a product key, wherever one names a catalog product (the catalog file, entitlements, keys, audit). */
export const productKey = (description: string) =>
  Type.String({ minLength: 2, maxLength: 63, pattern: "^[a-z][a-z0-9-]*[a-z0-9]$", description });

export const ProductKey = productKey("Product key: 2-63 chars of [a-z0-9-], starting with a letter, not ending with '-'.");

const trialDays = (description: string) => Type.Integer({ minimum: 1, maximum: 365, description });

export const Product = Type.Object(
  {
    key: ProductKey,
    name: Type.String({ description: "Display name." }),
    description: Type.String({ description: "One or two sentences on what the product does." }),
    trial_days: Nullable(trialDays("Trial length in days; null when the product offers no trial.")),
  },
  { $id: "Product", title: "Product" },
);
export type Product = Static<typeof Product>;

export const ProductList = Type.Object({ products: Type.Array(Type.Ref(Product), { description: "Products on sale, by key." }) });

/** One entry of the catalog file. */
export const CatalogFileProduct = Type.Object(
  {
    key: productKey("a key of 2-63 characters of [a-z0-9-], starting with a letter, not ending with '-'"),
    name: Type.String({ minLength: 1, maxLength: 200, pattern: "\\S", description: "a display name of 1-200 characters, not blank" }),
    description: Type.Optional(Type.String({ maxLength: 2000, description: "text of at most 2000 characters" })),
    trial_days: Type.Optional(
      Type.Union([trialDays("Trial length in days."), Type.Null()], {
        description: "an integer from 1 to 365, or null (or absent) for no trial",
      }),
    ),
  },
  { additionalProperties: false },
);
export type CatalogFileProduct = Static<typeof CatalogFileProduct>;

/** The catalog file: `{"products": [...]}`, at least one product, keys unique. */
export const CatalogFile = Type.Object(
  {
    products: Type.Array(CatalogFileProduct, {
      minItems: 1,
      maxItems: 1000,
      description: "a list of 1 to 1000 products (an empty list would retire the whole catalog)",
    }),
  },
  { additionalProperties: false, description: 'an object {"products": [...]}' },
);
export type CatalogFile = Static<typeof CatalogFile>;

export const CatalogRequest = Type.Object(
  {
    tenant_id: Uuid,
    product: ProductKey,
  },
  { additionalProperties: false },
);
export type CatalogRequest = Static<typeof CatalogRequest>;
