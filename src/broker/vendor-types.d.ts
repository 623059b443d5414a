// aedes-persistence-redis ships no type declarations; this is the part Moat uses.
declare module "aedes-persistence-redis" {
  import type { RedisOptions } from "ioredis";
  interface AedesRedisPersistence {
    setup(broker: unknown): Promise<void>;
    destroy(): Promise<void>;
  }
  function aedesPersistenceRedis(options?: RedisOptions & { maxSessionDelivery?: number; packetTTL?: (packet: unknown) => number }): AedesRedisPersistence;
  export default aedesPersistenceRedis;
}
