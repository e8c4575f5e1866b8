import type { AuditEvent } from "../api.js";
import { Link, Time } from "./ui.js";

/** An action name may wrap after its dots and underscores (tenant.<wbr>activated), never inside a word. */
function breakable(action: string) {
  return action.split(/(?<=[._])/).map((part, i) => (i === 0 ? part : [<wbr key={i} />, part]));
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
          {showTenant ? (
            <th scope="col" class="wide">
              Tenant
            </th>
          ) : null}
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
            <td class="mono">{breakable(e.action)}</td>
            <td>{e.actor_id ?? "—"}</td>
            {showTenant ? (
              <td class="wide">{e.tenant_id ? <Link to={`tenants/${e.tenant_id}`}>{e.tenant_id.slice(0, 8)}</Link> : "—"}</td>
            ) : null}
            <td class="wide">{e.product ?? "—"}</td>
            <td class="wide mono small break-any">
              {e.target_type ? `${e.target_type} ${e.target_id ?? ""} ` : ""}
              {Object.keys(e.metadata ?? {}).length ? JSON.stringify(e.metadata) : ""}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
