/** The parts of the API's published OpenAPI document that tests walk: route schemas and parameters. */
export interface Schema {
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  minLength?: number;
  maxItems?: number;
  minItems?: number;
  pattern?: string;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
}

export interface Parameter {
  in: "query" | "path" | "header";
  name: string;
  schema: Schema;
}

export interface Operation {
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema: Schema }> };
  responses?: Record<string, { content?: Record<string, unknown> }>;
}

/** Whether the operation answers with a stream that stays open (server-sent events). */
export function isStreaming(op: Operation): boolean {
  return Object.values(op.responses ?? {}).some((r) => r.content?.["text/event-stream"] !== undefined);
}

/** The JSON types a schema allows (`type` may be one name or a list). */
export function typesOf(schema: Schema): string[] {
  return Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
}
