import { Type } from "@sinclair/typebox";
import { notFound } from "../domain/errors.js";
import { activateTenant, cancelTenant, createTenant, updateTenant } from "../domain/tenants.js";
import { IdParams, ProblemRef } from "../schemas/common.js";
import { SlugParams, Tenant, TenantCreate, TenantList, TenantListQuery, TenantPatch } from "../schemas/tenant.js";
import { tenantFindById, tenantFindBySlug, tenantList } from "../store/tenants.js";
import { CursorPart, decodeCursor, page } from "./pagination.js";
import type { App, Deps } from "./types.js";

const TenantRef = Type.Ref(Tenant);
const errors = { 400: ProblemRef, 401: ProblemRef, 403: ProblemRef, 404: ProblemRef, 409: ProblemRef };
const tags = ["tenants"];

export async function tenantRoutes(app: App, { db }: Deps): Promise<void> {
  app.post(
    "/v1/tenants",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Create a tenant",
        description: "Creates a pending tenant. 409 when the slug is taken.",
        body: TenantCreate,
        response: { 201: TenantRef, ...errors },
      },
    },
    async (req, reply) => {
      const tenant = await db.tx((q) => createTenant(q, req.body, req.actor));
      return reply.code(201).header("location", `/v1/tenants/${tenant.id}`).send(tenant);
    },
  );

  app.get(
    "/v1/tenants",
    {
      config: { roles: ["admin", "service", "auditor"] },
      schema: {
        tags,
        summary: "List tenants",
        description: "Newest first, filtered, paged with `cursor`.",
        querystring: TenantListQuery,
        response: { 200: TenantList, ...errors },
      },
    },
    async (req) => {
      const { limit, cursor, ...filters } = req.query;
      const before = cursor ? decodeCursor("tenants", cursor, [CursorPart.timestamp, CursorPart.uuid]) : undefined;
      const rows = await tenantList(db, {
        ...filters,
        limit: limit + 1,
        ...(before ? { before: { createdAt: before[0] as string, id: before[1] as string } } : {}),
      });
      const { items, next_cursor } = page(rows, limit, "tenants", (t) => [t.created_at, t.id]);
      return { tenants: items, next_cursor };
    },
  );

  app.get(
    "/v1/tenants/:id",
    {
      config: { roles: ["admin", "service", "auditor"] },
      schema: { tags, summary: "Get a tenant", params: IdParams, response: { 200: TenantRef, ...errors } },
    },
    async (req) => {
      const tenant = await tenantFindById(db, req.params.id);
      if (!tenant) throw notFound("tenant");
      return tenant;
    },
  );

  app.get(
    "/v1/tenants/by-slug/:slug",
    {
      config: { roles: ["admin", "service", "auditor"] },
      schema: { tags, summary: "Get a tenant by slug", params: SlugParams, response: { 200: TenantRef, ...errors } },
    },
    async (req) => {
      const tenant = await tenantFindBySlug(db, req.params.slug);
      if (!tenant) throw notFound("tenant");
      return tenant;
    },
  );

  app.patch(
    "/v1/tenants/:id",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Update a tenant",
        description: "Changes the given fields; null clears. Status changes go through activate and cancel.",
        params: IdParams,
        body: TenantPatch,
        response: { 200: TenantRef, ...errors },
      },
    },
    async (req) => (await db.tx((q) => updateTenant(q, req.params.id, req.body, req.actor))).value,
  );

  app.post(
    "/v1/tenants/:id/activate",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Activate a tenant",
        description: "pending -> active (its requested entitlements become active). Active: unchanged. Cancelled: 409.",
        params: IdParams,
        response: { 200: TenantRef, ...errors },
      },
    },
    async (req) => (await db.tx((q) => activateTenant(q, req.params.id, req.actor))).value,
  );

  app.post(
    "/v1/tenants/:id/cancel",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Cancel a tenant",
        description: "-> cancelled: its entitlements are cancelled and its keys stop verifying. Cancelled: unchanged.",
        params: IdParams,
        response: { 200: TenantRef, ...errors },
      },
    },
    async (req) => (await db.tx((q) => cancelTenant(q, req.params.id, req.actor))).value,
  );
}
