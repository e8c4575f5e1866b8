import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A strong random token: 32 bytes, base64url. */
export const newToken = (): string => randomBytes(32).toString("base64url");

export interface EmbeddedAdminToken {
  token: string;
  /** Where it is kept; null in memory mode. */
  file: string | null;
  /** True when this start generated it (the only time it is printed). */
  created: boolean;
  /** The kept file's permission bits when others than its owner may read or write it (looser than 0600). */
  looseMode: number | null;
}

/**
 * Embedded mode with no REGISTRY_ADMIN_TOKEN: the admin token is generated
 * on first start and kept in DATA_DIR (owner-only), so it survives restarts.
 */
export function embeddedAdminToken(dataDir: string | null): EmbeddedAdminToken {
  if (dataDir === null) return { token: newToken(), file: null, created: true, looseMode: null };
  const file = join(dataDir, "admin-token");
  if (existsSync(file)) {
    const token = readFileSync(file, "utf8").trim();
    const mode = statSync(file).mode & 0o777;
    if (token.length >= 16) return { token, file, created: false, looseMode: mode & 0o077 ? mode : null };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const token = newToken();
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, file, created: true, looseMode: null };
}
