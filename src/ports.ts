/**
 * Shared port types, open to every domain (like errors.ts). The change feed's kinds and data live in
 * change-feed.ts; they are re-exported here for the domains' port declarations.
 */
export type { Change, ChangeData, ChangeFeed, ChangeInput, ChangeKind, ChangeWriter } from "./change-feed.js";

/** Runs `fn` in one database transaction with the domain's unit of work; retried on write conflicts. */
export type Transactional<U> = <T>(fn: (uow: U) => Promise<T>) => Promise<T>;
