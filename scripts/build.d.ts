/** Types for scripts/build.js (plain JavaScript so the bin can run it without a TypeScript loader). */
export declare function findCompiler(): string | null;
export declare function isStale(): boolean;
export declare function build(): void;
export declare function ensureBuilt(): void;
