import { useState } from "preact/hooks";
import { ok, type Tenant } from "../api.js";
import { ErrorNote, Time, useAction, useLoad } from "../components/ui.js";
import { useSession } from "../session.js";

const LIVE = new Set(["requested", "trial", "active"]);

export function EntitlementsSection({ tenant, version, onChange }: { tenant: Tenant; version: number; onChange(): void }) {
  const { api, canWrite } = useSession();
  const list = useLoad(
    () => ok(api.GET("/v1/entitlements", { params: { query: { tenant_id: tenant.id } } })).then((r) => r.entitlements),
    [tenant.id, version],
  );
  const catalog = useLoad(() => ok(api.GET("/v1/catalog")).then((r) => r.products), []);
  const [product, setProduct] = useState("");
  const [busy, error, run] = useAction();
  const rows = list.data ?? [];
  const chosen = product || catalog.data?.[0]?.key || "";
  const open = tenant.status !== "cancelled";

  const act = (fn: () => Promise<unknown>) =>
    run(async () => {
      await fn();
      list.reload();
      onChange();
    });
  const grant = () => act(() => ok(api.POST("/v1/entitlements", { body: { tenant_id: tenant.id, product: chosen, status: "active" } })));
  const request = () => act(() => ok(api.POST("/v1/catalog/request", { body: { tenant_id: tenant.id, product: chosen } })));
  const trial = () => act(() => ok(api.POST("/v1/catalog/trial-request", { body: { tenant_id: tenant.id, product: chosen } })));
  const revoke = (p: string) =>
    act(() => ok(api.POST("/v1/entitlements", { body: { tenant_id: tenant.id, product: p, status: "cancelled" } })));

  return (
    <section aria-labelledby="entitlements-heading">
      <h2 id="entitlements-heading">
        Entitlements <span class="count">({rows.length})</span>
      </h2>
      <ErrorNote error={list.error ?? catalog.error} />
      {rows.length ? (
        <table class="list">
          <caption class="visually-hidden">Products this tenant may use</caption>
          <thead>
            <tr>
              <th scope="col">Product</th>
              <th scope="col">Status</th>
              <th scope="col" class="wide">
                Trial ends
              </th>
              <th scope="col" class="wide">
                Updated
              </th>
              {canWrite ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((e) => (
              <tr key={e.product}>
                <td class="mono">{e.product}</td>
                <td>
                  <span class={`badge ${e.status}`}>{e.status}</span>
                </td>
                <td class="wide">
                  <Time iso={e.trial_ends_at} />
                </td>
                <td class="wide">
                  <Time iso={e.updated_at} />
                </td>
                {canWrite ? (
                  <td>
                    {LIVE.has(e.status) ? (
                      <button type="button" disabled={busy} aria-label={`Revoke ${e.product}`} onClick={() => revoke(e.product)}>
                        Revoke
                      </button>
                    ) : null}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">{list.loading ? "Loading…" : "No products yet."}</p>
      )}
      {canWrite && open ? (
        <form class="inline" aria-label="Add to this tenant" onSubmit={(e) => e.preventDefault()}>
          <label for="entitlement-product">Product</label>
          <select id="entitlement-product" value={chosen} onChange={(e) => setProduct(e.currentTarget.value)}>
            {(catalog.data ?? []).map((p) => (
              <option key={p.key} value={p.key}>
                {p.name} ({p.key})
              </option>
            ))}
          </select>
          <button type="button" disabled={busy || !chosen} onClick={grant}>
            Grant
          </button>
          <button type="button" disabled={busy || !chosen} onClick={request}>
            Request
          </button>
          <button type="button" disabled={busy || !chosen} onClick={trial}>
            Start trial
          </button>
        </form>
      ) : null}
      <ErrorNote error={error} />
    </section>
  );
}
