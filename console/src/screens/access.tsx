import { useState } from "preact/hooks";
import { ApiError, type CreatedToken, type ManagedToken, ok, type Person, type PersonSession, type Role } from "../api.js";
import { ShownOnce } from "../components/shown-once.js";
import { ConfirmDialog, ErrorNote, PageTitle, Time, useAction, useLoad, useReveal } from "../components/ui.js";
import { Breakable, fromLocalInput } from "../format.js";
import { useSession } from "../session.js";

const ROLES: readonly Role[] = ["service", "auditor", "admin"];
const GRACE: readonly [number, string][] = [
  [0, "none: it stops now"],
  [3600, "1 hour"],
  [86_400, "24 hours"],
  [604_800, "7 days"],
];

/** A list this registry may not have (an older version answers 404): null then. */
async function listOrNull<T>(load: () => Promise<T[]>): Promise<T[] | null> {
  try {
    return await load();
  } catch (err) {
    if (err instanceof ApiError && err.problem.status === 404) return null;
    throw err;
  }
}

/** A person by email, else name, else id (the identity provider may give no email). */
const personLabel = (p: { id: string; email: string | null; name?: string | null }) => p.email ?? p.name ?? p.id;

/** Who may act on this registry: managed tokens, the people who signed in through SSO, and their sessions. */
export function AccessScreen() {
  // Disabling a person ends their sessions: the sessions list reloads with this counter.
  const [version, setVersion] = useState(0);
  return (
    <section>
      <PageTitle>Access</PageTitle>
      <p class="muted">
        Managed tokens for services and scripts, the people who signed in through single sign-on, and their live sessions. Every change here
        is in the audit log.
      </p>
      <TokensSection />
      <PeopleSection onChange={() => setVersion((v) => v + 1)} />
      <SessionsSection version={version} />
    </section>
  );
}

function tokenState(t: ManagedToken): [string, string] {
  if (t.revoked_at) return ["revoked", "cancelled"];
  if (t.expires_at && Date.parse(t.expires_at) <= Date.now()) return ["expired", "expired"];
  if (t.grace_ends_at) return Date.parse(t.grace_ends_at) <= Date.now() ? ["rotated out", "expired"] : ["rotated", "pending"];
  return ["live", "active"];
}

function TokensSection() {
  const { api, canWrite } = useSession();
  const list = useLoad(() => listOrNull<ManagedToken>(async () => (await ok(api.GET("/v1/tokens"))).tokens), []);
  const [creating, setCreating] = useState(false);
  // The secret lives in this component's memory only: gone on reload or when the screen closes.
  const [secret, setSecret] = useState<string | null>(null);
  const [rotating, setRotating] = useState<ManagedToken | null>(null);
  const [revoking, setRevoking] = useState<ManagedToken | null>(null);
  const [grace, setGrace] = useState(86_400);
  const [busy, error, run, clear] = useAction();
  const rows = list.data ?? [];

  const rotate = () =>
    run(async () => {
      if (!rotating) return;
      const path = { id: rotating.id };
      const created = await ok(api.POST("/v1/tokens/{id}/rotate", { params: { path }, body: { grace_seconds: grace } }));
      setRotating(null);
      setSecret(created.token);
      list.reload();
    });
  const revoke = () =>
    run(async () => {
      if (!revoking) return;
      await ok(api.DELETE("/v1/tokens/{id}", { params: { path: { id: revoking.id } } }));
      setRevoking(null);
      list.reload();
    });
  const close = () => {
    setRotating(null);
    setRevoking(null);
    clear();
  };

  return (
    <section aria-labelledby="tokens-heading">
      <div class="title-row">
        <h2 id="tokens-heading">
          Tokens <span class="count">({rows.length})</span>
        </h2>
        {canWrite && list.data !== null ? (
          <button type="button" aria-expanded={creating} aria-controls="new-token" onClick={() => setCreating((c) => !c)}>
            New token
          </button>
        ) : null}
      </div>
      {creating && canWrite ? (
        <NewTokenForm
          onCreated={(created) => {
            setSecret(created.token);
            setCreating(false);
            list.reload();
          }}
        />
      ) : null}
      {secret ? (
        <ShownOnce label="New token" plaintext={secret} onDismiss={() => setSecret(null)}>
          Shown once: the registry keeps only its SHA-256 digest. Copy it now and give it to the service that uses it.
        </ShownOnce>
      ) : null}
      <ErrorNote error={list.error} />
      {list.data === null ? <p class="notice">Managed tokens are not available on this registry.</p> : null}
      {rows.length ? (
        <table class="list">
          <caption class="visually-hidden">Managed tokens, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col" class="wide">
                Prefix
              </th>
              <th scope="col" class="wide">
                Created by
              </th>
              <th scope="col" class="wide">
                Last used
              </th>
              <th scope="col" class="wide">
                Expires
              </th>
              <th scope="col">State</th>
              {canWrite ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((t) => {
              const [state, tone] = tokenState(t);
              return (
                <tr key={t.id}>
                  <td>
                    <Breakable text={t.name} />
                  </td>
                  <td>{t.role}</td>
                  <td class="wide mono">{t.prefix}</td>
                  <td class="wide">
                    <Breakable text={t.created_by} />
                  </td>
                  <td class="wide">
                    <Time iso={t.last_used_at} />
                  </td>
                  <td class="wide">
                    <Time iso={t.expires_at} />
                  </td>
                  <td>
                    <span class={`badge ${tone}`}>{state}</span>
                    {t.grace_ends_at && !t.revoked_at ? (
                      <div class="small muted">
                        until <Time iso={t.grace_ends_at} />
                      </div>
                    ) : null}
                  </td>
                  {canWrite ? (
                    <td>
                      <div class="row-actions">
                        {!t.revoked_at && !t.rotated_to && state === "live" ? (
                          <button type="button" aria-label={`Rotate ${t.name}`} onClick={() => setRotating(t)}>
                            Rotate
                          </button>
                        ) : null}
                        {!t.revoked_at ? (
                          <button type="button" aria-label={`Revoke ${t.name}`} onClick={() => setRevoking(t)}>
                            Revoke
                          </button>
                        ) : null}
                      </div>
                    </td>
                  ) : null}
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : list.data !== null ? (
        <p class="muted">{list.loading ? "Loading…" : "No managed tokens yet."}</p>
      ) : null}
      <ConfirmDialog open={rotating !== null} title={`Rotate ${rotating?.name ?? ""}?`} busy={busy} onConfirm={rotate} onClose={close}>
        <p>A new token with the same name, role and expiry is shown once. The old one keeps working for the grace period, then stops.</p>
        <div class="field">
          <label for="rotate-grace">Old token keeps working for</label>
          <select id="rotate-grace" value={grace} onChange={(e) => setGrace(Number(e.currentTarget.value))}>
            {GRACE.map(([seconds, label]) => (
              <option key={seconds} value={seconds}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <ErrorNote error={error} />
      </ConfirmDialog>
      <ConfirmDialog open={revoking !== null} title={`Revoke ${revoking?.name ?? ""}?`} busy={busy} onConfirm={revoke} onClose={close}>
        <p>Every instance stops accepting {revoking?.prefix}… within about a second. This cannot be undone.</p>
        <ErrorNote error={error} />
      </ConfirmDialog>
    </section>
  );
}

function NewTokenForm({ onCreated }: { onCreated(t: CreatedToken): void }) {
  const { api } = useSession();
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("service");
  const [expires, setExpires] = useState("");
  const [busy, error, run] = useAction();
  const ref = useReveal<HTMLFormElement>();

  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const expiresAt = fromLocalInput(expires);
      const body = { name: name.trim(), role, ...(expiresAt ? { expires_at: expiresAt } : {}) };
      onCreated(await ok(api.POST("/v1/tokens", { body })));
    });
  };

  return (
    <form ref={ref} id="new-token" class="card" aria-label="New token" onSubmit={submit}>
      <div class="field">
        <label for="token-name">Name</label>
        <input
          id="token-name"
          required
          maxLength={200}
          aria-describedby="token-name-hint"
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
        />
        <small id="token-name-hint">The audit log names what this token does by this name (e.g. the service using it).</small>
      </div>
      <div class="field">
        <label for="token-role">Role</label>
        <select id="token-role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="token-expires">Expires</label>
        <input
          id="token-expires"
          type="datetime-local"
          aria-describedby="token-expires-hint"
          value={expires}
          onInput={(e) => setExpires(e.currentTarget.value)}
        />
        <small id="token-expires-hint">Your local time; empty: it does not expire.</small>
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

function PeopleSection({ onChange }: { onChange(): void }) {
  const { api, canWrite } = useSession();
  const list = useLoad(() => listOrNull<Person>(async () => (await ok(api.GET("/v1/people"))).people), []);
  const [busy, error, run] = useAction();
  const rows = list.data ?? [];
  const toggle = (p: Person) =>
    run(async () => {
      const path = { params: { path: { id: p.id } } };
      await ok(p.disabled ? api.POST("/v1/people/{id}/enable", path) : api.POST("/v1/people/{id}/disable", path));
      list.reload();
      onChange();
    });
  return (
    <section aria-labelledby="people-heading">
      <h2 id="people-heading">
        People <span class="count">({rows.length})</span>
      </h2>
      <ErrorNote error={list.error ?? error} />
      {list.data === null ? <p class="notice">Sign-in through SSO is not available on this registry.</p> : null}
      {rows.length ? (
        <table class="list">
          <caption class="visually-hidden">People who have signed in</caption>
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col" class="wide">
                Name
              </th>
              <th scope="col">Role</th>
              <th scope="col" class="wide">
                Last seen
              </th>
              <th scope="col">State</th>
              {canWrite ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((p) => (
              <tr key={p.id}>
                <td>
                  <Breakable text={personLabel(p)} />
                </td>
                <td class="wide">{p.name ?? "—"}</td>
                <td>{p.role}</td>
                <td class="wide">
                  <Time iso={p.last_seen_at} />
                </td>
                <td>{p.disabled ? <span class="badge cancelled">disabled</span> : <span class="badge active">enabled</span>}</td>
                {canWrite ? (
                  <td>
                    <button
                      type="button"
                      disabled={busy}
                      aria-label={`${p.disabled ? "Enable" : "Disable"} ${personLabel(p)}`}
                      onClick={() => toggle(p)}
                    >
                      {p.disabled ? "Enable" : "Disable"}
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : list.data !== null ? (
        <p class="muted">{list.loading ? "Loading…" : "No one has signed in through SSO yet."}</p>
      ) : null}
    </section>
  );
}

function SessionsSection({ version }: { version: number }) {
  const { api, canWrite } = useSession();
  const list = useLoad(() => listOrNull<PersonSession>(async () => (await ok(api.GET("/v1/sessions"))).sessions), [version]);
  const [busy, error, run] = useAction();
  const rows = list.data ?? [];
  const end = (s: PersonSession) =>
    run(async () => {
      await ok(api.DELETE("/v1/sessions/{id}", { params: { path: { id: s.id } } }));
      list.reload();
    });
  if (list.data === null) return null;
  return (
    <section aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">
        Sessions <span class="count">({rows.length})</span>
      </h2>
      <ErrorNote error={list.error ?? error} />
      {rows.length ? (
        <table class="list">
          <caption class="visually-hidden">Live console sessions</caption>
          <thead>
            <tr>
              <th scope="col">Person</th>
              <th scope="col" class="wide">
                Started
              </th>
              <th scope="col" class="wide">
                Last seen
              </th>
              <th scope="col">Expires</th>
              {canWrite ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => (
              <tr key={s.id}>
                <td>
                  <Breakable text={personLabel(s.person)} />
                </td>
                <td class="wide">
                  <Time iso={s.started_at} />
                </td>
                <td class="wide">
                  <Time iso={s.last_seen_at} />
                </td>
                <td>
                  <Time iso={s.expires_at} />
                </td>
                {canWrite ? (
                  <td>
                    <button type="button" disabled={busy} aria-label={`End session ${personLabel(s.person)}`} onClick={() => end(s)}>
                      End session
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">{list.loading ? "Loading…" : "No live sessions."}</p>
      )}
    </section>
  );
}
