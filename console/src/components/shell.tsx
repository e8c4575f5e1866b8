import { useEffect } from "preact/hooks";
import { navigate, useRoute } from "../router.js";
import { AccessScreen } from "../screens/access.js";
import { AuditScreen } from "../screens/audit.js";
import { CatalogScreen } from "../screens/catalog.js";
import { StatusScreen } from "../screens/status.js";
import { TenantScreen } from "../screens/tenant.js";
import { TenantsScreen } from "../screens/tenants.js";
import { WebhooksScreen } from "../screens/webhooks.js";
import { useSession } from "../session.js";
import { ErrorNote, Link, useAction } from "./ui.js";

const NAV = [
  ["tenants", "Tenants"],
  ["audit", "Audit"],
  ["catalog", "Catalog"],
  ["webhooks", "Webhooks"],
  ["access", "Access"],
  ["status", "Status"],
] as const;

function Screen({ route }: { route: string }) {
  const [section, id, ...rest] = route.split("/");
  if (section === "tenants" && id && rest.length === 0) return <TenantScreen key={id} id={decodeURIComponent(id)} />;
  if (section === "tenants" && !id) return <TenantsScreen />;
  if (section === "audit" && !id) return <AuditScreen />;
  if (section === "catalog" && !id) return <CatalogScreen />;
  if (section === "webhooks" && !id) return <WebhooksScreen />;
  if (section === "access" && !id) return <AccessScreen />;
  if (section === "status" && !id) return <StatusScreen />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no console page at this address. <Link to="tenants">Go to the tenants</Link>.
      </p>
    </section>
  );
}

export function Shell({ onSignOut }: { onSignOut(): Promise<void> }) {
  const session = useSession();
  const route = useRoute();
  const [busy, error, run] = useAction();
  useEffect(() => {
    if (route === "") navigate("tenants", true);
  }, [route]);
  const section = route.split("/")[0] || "tenants";
  const who = session.me.email ?? session.me.name;

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">tenant-registry</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([to, label]) => (
              <li key={to}>
                <Link to={to} current={section === to}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span class="who-name">
            {who} <span class="role">({session.me.role})</span>
          </span>
          <button type="button" disabled={busy} onClick={() => run(onSignOut)}>
            Sign out
          </button>
        </div>
      </header>
      {error ? (
        <div class="top-error">
          <ErrorNote error={error} />
        </div>
      ) : null}
      <main id="main">
        <Screen route={route === "" ? "tenants" : route} />
      </main>
    </>
  );
}
