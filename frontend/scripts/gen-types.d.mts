// Types for gen-types.mjs, so src/api/schema.test.ts can import it under `tsc --noEmit`.
export function loadSpec(): Promise<unknown>;
export function renderSchema(spec: unknown): Promise<string>;
export function renderSpecModule(spec: unknown): string;
export const OUTPUTS: Record<string, (spec: unknown) => string | Promise<string>>;
export function readOutput(path: string): Promise<string>;
