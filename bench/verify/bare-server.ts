/**
 * The ceiling for the verify benchmark: a bare Fastify route, in the same
 * style as the real one (TypeBox schemas for the same body and the same
 * answer), that does no work. Prints its URL as one JSON line.
 */
import { randomUUID } from "node:crypto";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify from "fastify";
import { VerifyRequest, VerifyResult } from "../../src/schemas/api-key.js";

const app = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>();
const answer = { valid: true as const, key_id: randomUUID(), tenant_id: randomUUID(), product: "crm", scopes: ["read"], expires_at: null };
app.post("/v1/internal/api-keys/verify", { schema: { body: VerifyRequest, response: { 200: VerifyResult } } }, async () => answer);
// The bench gives it a free port, as it gives the registry.
await app.listen({ port: Number(process.env.PORT ?? 0), host: "127.0.0.1" });
process.on("SIGTERM", () => void app.close().then(() => process.exit(0)));
