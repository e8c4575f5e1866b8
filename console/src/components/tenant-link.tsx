import { useEffect, useState } from "preact/hooks";
import { useSession } from "../session.js";
import { Link } from "./ui.js";

/**
 * A tenant referred to by id (an audit row, a delivery's event), shown by its
 * slug and linked to its screen; the name is on hover. While the look-up
 * runs, and for an id the registry no longer knows, the id stands in.
 */
export function TenantLink({ id }: { id: string }) {
  const { tenants } = useSession();
  const [, rerender] = useState(0);
  useEffect(() => tenants.subscribe(() => rerender((n) => n + 1)), [tenants]);
  const t = tenants.get(id);
  return (
    <Link to={`tenants/${id}`} title={t ? t.name : undefined} class="tenant">
      {t ? t.slug : t === null ? id : <span class="muted">…</span>}
    </Link>
  );
}
