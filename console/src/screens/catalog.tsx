import { ok } from "../api.js";
import { ErrorNote, PageTitle, useLoad } from "../components/ui.js";
import { useSession } from "../session.js";

export function CatalogScreen() {
  const { api } = useSession();
  const products = useLoad(() => ok(api.GET("/v1/catalog")).then((r) => r.products), []);
  return (
    <section>
      <PageTitle>Catalog</PageTitle>
      <p class="muted">The products on sale, from the operator's catalog file. Grant them from a tenant's page.</p>
      <ErrorNote error={products.error} />
      <table class="list">
        <caption class="visually-hidden">Products</caption>
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Name</th>
            <th scope="col">Trial</th>
            <th scope="col" class="wide">
              Description
            </th>
          </tr>
        </thead>
        <tbody>
          {(products.data ?? []).map((p) => (
            <tr key={p.key}>
              <td class="mono">{p.key}</td>
              <td>{p.name}</td>
              <td>{p.trial_days ? `${p.trial_days} days` : "none"}</td>
              <td class="wide">{p.description}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {products.loading ? <p class="muted">Loading…</p> : null}
    </section>
  );
}
