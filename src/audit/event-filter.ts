/** Which security events a reader asked for: by type (exact or `prefix.*`) and by device. Used by the live stream (/v1/events/stream) and `moat events tail`. */
import type { SecurityEventInput } from "./events.js";

/** `type` query: comma-separated event types, each exact (`cert.revoked`) or a prefix (`device.*`). */
export const EVENT_TYPE_FILTER_PATTERN = "^[a-z0-9_]+(\\.[a-z0-9_]+)*(\\.\\*)?(,[a-z0-9_]+(\\.[a-z0-9_]+)*(\\.\\*)?)*$";

export interface EventStreamFilter {
  types?: string;
  device?: string;
}

/** Whether an event passes the client's `type` and `device` filters. */
export function matchesFilter(event: SecurityEventInput, filter: EventStreamFilter): boolean {
  if (filter.types) {
    const wanted = filter.types.split(",");
    if (!wanted.some((t) => (t.endsWith(".*") ? event.type.startsWith(t.slice(0, -1)) : event.type === t))) return false;
  }
  if (filter.device) {
    const data = event.data ?? {};
    const about = event.subject === filter.device || event.actor === `device:${filter.device}` || data.deviceId === filter.device || data.clientId === filter.device;
    if (!about) return false;
  }
  return true;
}
