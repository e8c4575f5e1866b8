// The package's `tenant-registry/client` entry: the typed client and the verify middleware for product services.

export {
  createKeyChecker,
  type KeyCheck,
  type KeyChecker,
  type RegistryAuthOptions,
  type RegistryAuthRequest,
  type RegistryPrincipal,
  registryAuth,
  registryAuthHook,
} from "./middleware.js";
export type { components, paths } from "./openapi.js";
export {
  type ApiKey,
  type AuditEvent,
  createRegistryClient,
  type Entitlement,
  ok,
  type Problem,
  type Product,
  type RegistryClient,
  type RegistryClientOptions,
  RegistryError,
  type Tenant,
} from "./registry-client.js";
