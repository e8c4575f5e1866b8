import type { AuditEvent } from "../api.js";
import { Breakable } from "../format.js";
import { TenantLink } from "./tenant-link.js";
import { Time } from "./ui.js";

/** What the event acted on; a tenant is named by its slug and linked, never shown as a bare id. */
function Target({ e }: { e: AuditEvent }) {
  if (!e.target_type) return null;
  if (e.target_type === "tenant" && e.target_id) {
    return (
      <>
        tenant <TenantLink id={e.target_id} />{" "}
      </>
    );
  }
  return <>{`${e.target_type} ${e.target_id ?? ""} `}</>;
}

/** Audit events, oldest first (the API's order). Metadata is shown as compact JSON. */
export function AuditTable({
  events,
  caption,
  showTenant = true,
}: {
  events: readonly AuditEvent[];
  caption: string;
  showTenant?: boolean;
}) {
  return (
    <table class="list audit">
      <caption class="visually-hidden">{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Action</th>
          <th scope="col">Actor</th>
          {showTenant ? <th scope="col">Tenant</th> : null}
          <th scope="col" class="wide">
            Product
          </th>
          <th scope="col" class="wide">
            Details
          </th>
        </tr>
      </thead>
      <tbody>
        {events.map((e) => (
          <tr key={e.id}>
            <td>
              <Time iso={e.created_at} />
            </td>
            <td class="mono action">
              <Breakable text={e.action} />
            </td>
            <td>{e.actor_id ? <Breakable text={e.actor_id} /> : "—"}</td>
            {showTenant ? <td>{e.tenant_id ? <TenantLink id={e.tenant_id} /> : "—"}</td> : null}
            <td class="wide">{e.product ?? "—"}</td>
            <td class="wide mono small break-any">
              <Target e={e} />
              {Object.keys(e.metadata ?? {}).length ? JSON.stringify(e.metadata) : ""}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
