import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import FindMyWay from "find-my-way";
import { problem, sendProblem } from "./errors.js";
import type { unmatchedPrelude } from "./prelude.js";

export interface KnownRoute {
  method: string;
  url: string;
}

/**
 * 404 for unknown paths, 405 with Allow for a known path with another
 * method. `routes` is read on the first miss, when every route is known.
 */
export function registerNotFound(app: FastifyInstance, routes: readonly KnownRoute[], prelude: ReturnType<typeof unmatchedPrelude>): void {
  const router = FindMyWay();
  let built = false;
  const answer = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!built) {
      for (const r of routes) if (r.method !== "HEAD") router.on(r.method as "GET", r.url, () => {});
      built = true;
    }
    prelude.begin(req, reply);
    const path = req.url.split("?")[0] ?? "/";
    const allowed = ["GET", "POST", "PATCH", "PUT", "DELETE"].filter((m) => router.find(m as "GET", path) !== null);
    if (allowed.length > 0) {
      reply.header("allow", allowed.join(", "));
      sendProblem(req, reply, problem(405, "not_found", `${req.method} is not allowed here; use ${allowed.join(", ")}`));
    } else {
      sendProblem(req, reply, problem(404, "not_found", `no route for ${req.method} ${path}`));
    }
    prelude.end(req, reply);
    return reply;
  };
  // Answered before any body is read: a body-carrying method Fastify knows but
  // no route takes (QUERY, say) is a 405, not a complaint about its body.
  // Callback style: the routes that exist pay no promise for this hook.
  app.addHook("onRequest", (req, reply, done) => {
    if (!req.is404) return done();
    // Replying here ends the request; `done` is not called.
    void answer(req, reply);
  });
  app.setNotFoundHandler(answer);
}
