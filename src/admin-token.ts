import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A strong random token: 32 bytes, base64url. */
export const newToken = (): string => randomBytes(32).toString("base64url");

/**
 * Embedded mode with no REGISTRY_ADMIN_TOKEN: the admin token is generated
 * on first start and kept in DATA_DIR (owner-only), so it survives restarts.
 */
export function embeddedAdminToken(dataDir: string | null): { token: string; file: string | null; created: boolean } {
  if (dataDir === null) return { token: newToken(), file: null, created: true };
  const file = join(dataDir, "admin-token");
  if (existsSync(file)) {
    const token = readFileSync(file, "utf8").trim();
    if (token.length >= 16) return { token, file, created: false };
  }
  mkdirSync(dataDir, { recursive: true });
  const token = newToken();
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, file, created: true };
}
