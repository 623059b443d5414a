/**
 * Session Present for persistent sessions. aedes derives CONNACK's Session Present flag from the
 * stored subscriptions alone, so a CleanSession=0 client that reconnects to a session holding no
 * subscriptions is told 0, although MQTT-3.2.2-2 requires 1 (Mosquitto answers 1). Moat marks every
 * persistent session with a subscription to a reserved topic that nobody can publish to: aedes keeps
 * it in its persistence (memory, or Redis shared by all nodes), finds it at the next CleanSession=0
 * connect and reports the session as present. A CleanSession=1 connect discards it with the rest of
 * the session, as the specification says.
 */
import type { Aedes, Client } from "aedes";

/** Starts with `$`, so no client may publish or subscribe to it [MQTT-4.7.2-1]. */
export const SESSION_MARKER_TOPIC = "$moat/session";

/** True while aedes restores a stored session's subscriptions, before CONNACK is written. */
export function isRestoringSession(client: Client): boolean {
  return (client as Client & { connackSent?: boolean }).connackSent !== true;
}

/** Records that `client` has a persistent session (called once its CONNACK has gone out). */
export async function markPersistentSession(aedes: Aedes, client: Client): Promise<void> {
  if (client.clean) return;
  const persistence = (aedes as Aedes & { persistence: { addSubscriptions(client: Client, subs: { topic: string; qos: number }[]): Promise<unknown> } }).persistence;
  await persistence.addSubscriptions(client, [{ topic: SESSION_MARKER_TOPIC, qos: 0 }]);
}
