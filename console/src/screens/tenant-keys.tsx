import { useState } from "preact/hooks";
import { type ApiKey, ok, type Tenant } from "../api.js";
import { ShownOnce } from "../components/shown-once.js";
import { ConfirmDialog, ErrorNote, Time, useAction, useLoad, useReveal } from "../components/ui.js";
import { useSession } from "../session.js";

export function ApiKeysSection({ tenant, onChange }: { tenant: Tenant; onChange(): void }) {
  const { api, canWrite } = useSession();
  const keys = useLoad(
    () => ok(api.GET("/v1/api-keys", { params: { query: { tenant_id: tenant.id } } })).then((r) => r.api_keys),
    [tenant.id],
  );
  const [creating, setCreating] = useState(false);
  // The plaintext lives in this component's memory only: gone on reload or when the tenant page closes.
  const [plaintext, setPlaintext] = useState<string | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [busy, error, run] = useAction();
  const rows = keys.data ?? [];

  const revoke = () =>
    run(async () => {
      if (!revoking) return;
      await ok(api.DELETE("/v1/api-keys/{id}", { params: { path: { id: revoking.id } } }));
      setRevoking(null);
      keys.reload();
      onChange();
    });

  return (
    <section aria-labelledby="keys-heading">
      <div class="title-row">
        <h2 id="keys-heading">
          API keys <span class="count">({rows.length})</span>
        </h2>
        {canWrite && tenant.status !== "cancelled" ? (
          <button type="button" aria-expanded={creating} aria-controls="new-key" onClick={() => setCreating((c) => !c)}>
            New key
          </button>
        ) : null}
      </div>
      {creating && canWrite ? (
        <NewKeyForm
          tenant={tenant}
          onCreated={(key) => {
            setPlaintext(key);
            setCreating(false);
            keys.reload();
            onChange();
          }}
        />
      ) : null}
      {plaintext ? (
        <ShownOnce label="New key" plaintext={plaintext} onDismiss={() => setPlaintext(null)}>
          Shown once: the registry keeps only a hash. Copy it now.
        </ShownOnce>
      ) : null}
      <ErrorNote error={keys.error} />
      {rows.length ? (
        <table class="list">
          <caption class="visually-hidden">This tenant's API keys, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Prefix</th>
              <th scope="col" class="wide">
                Product
              </th>
              <th scope="col" class="wide">
                Scopes
              </th>
              <th scope="col" class="wide">
                Last used
              </th>
              <th scope="col">State</th>
              {canWrite ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((k) => (
              <tr key={k.id}>
                <td>{k.name}</td>
                <td class="mono">{k.prefix}</td>
                <td class="wide">{k.product ?? "all products"}</td>
                <td class="wide">{k.scopes.length ? k.scopes.join(", ") : "—"}</td>
                <td class="wide">
                  <Time iso={k.last_used_at} />
                </td>
                <td>{k.revoked_at ? <span class="badge cancelled">revoked</span> : <span class="badge active">live</span>}</td>
                {canWrite ? (
                  <td>
                    {k.revoked_at ? null : (
                      <button type="button" aria-label={`Revoke ${k.name} (${k.prefix})`} onClick={() => setRevoking(k)}>
                        Revoke
                      </button>
                    )}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">{keys.loading ? "Loading…" : "No keys yet."}</p>
      )}
      <ConfirmDialog
        open={revoking !== null}
        title={`Revoke key ${revoking?.name ?? ""}?`}
        busy={busy}
        onConfirm={revoke}
        onClose={() => setRevoking(null)}
      >
        <p>Products stop accepting {revoking?.prefix}… within about a second. This cannot be undone.</p>
        <ErrorNote error={error} />
      </ConfirmDialog>
    </section>
  );
}

function NewKeyForm({ tenant, onCreated }: { tenant: Tenant; onCreated(key: string): void }) {
  const { api } = useSession();
  const catalog = useLoad(() => ok(api.GET("/v1/catalog")).then((r) => r.products), []);
  const [name, setName] = useState("");
  const [product, setProduct] = useState("");
  const [scopes, setScopes] = useState("");
  const [busy, error, run] = useAction();
  const ref = useReveal<HTMLFormElement>();

  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const list = [...new Set(scopes.split(/[\s,]+/).filter(Boolean))];
      const created = await ok(
        api.POST("/v1/api-keys", {
          body: { tenant_id: tenant.id, name: name.trim(), ...(product ? { product } : {}), ...(list.length ? { scopes: list } : {}) },
        }),
      );
      onCreated(created.key);
    });
  };

  return (
    <form ref={ref} id="new-key" class="card" aria-label="Create an API key" onSubmit={submit}>
      <div class="field">
        <label for="key-name">Name</label>
        <input id="key-name" required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="key-product">Product</label>
        <select id="key-product" value={product} onChange={(e) => setProduct(e.currentTarget.value)}>
          <option value="">all products</option>
          {(catalog.data ?? []).map((p) => (
            <option key={p.key} value={p.key}>
              {p.name} ({p.key})
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="key-scopes">Scopes</label>
        <input id="key-scopes" aria-describedby="key-scopes-hint" value={scopes} onInput={(e) => setScopes(e.currentTarget.value)} />
        <small id="key-scopes-hint">Separated by commas or spaces; empty for none.</small>
      </div>
      <div class="actions">
        <button type="submit" disabled={busy}>
          Create
        </button>
      </div>
      <ErrorNote error={error} />
    </form>
  );
}
