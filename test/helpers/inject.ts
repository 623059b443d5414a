import type { FastifyInstance, InjectOptions } from "fastify";

/** What the route walks read from an answer (a subset of light-my-request's response). */
export interface InjectedAnswer {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  json(): unknown;
}

/**
 * `api.inject` that also copes with routes answering with a stream that stays open (server-sent events):
 * with `streaming`, the answer resolves as soon as the headers are sent; a 200 stream is cancelled
 * (its body reads as empty), any other answer (a refusal) is read to its end as usual.
 */
export async function injectRoute(api: FastifyInstance, options: InjectOptions, streaming: boolean): Promise<InjectedAnswer> {
  if (!streaming) return api.inject(options);
  const response = await api.inject({ ...options, payloadAsStream: true });
  const stream = response.stream();
  let body = "";
  if (response.statusCode === 200) stream.destroy();
  else for await (const chunk of stream) body += String(chunk);
  return { statusCode: response.statusCode, headers: response.headers, body, json: () => JSON.parse(body) as unknown };
}
