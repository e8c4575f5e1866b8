// @tenant-registry/client: the typed client and the verify middleware for product services.

export {
  createKeyChecker,
  type HookReply,
  type HookRequest,
  type KeyCheck,
  type KeyChecker,
  type RegistryAuthFetchResult,
  type RegistryAuthLogDetails,
  type RegistryAuthLogger,
  type RegistryAuthOptions,
  type RegistryAuthRequest,
  type RegistryPrincipal,
  type RequestHeaders,
  registryAuth,
  registryAuthFetch,
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
